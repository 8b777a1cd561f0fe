//! The bridge from the blocking API to object_store's async one.
//!
//! Object store clients keep connection pools whose tasks live on the runtime that made them,
//! so blocking calls all run on one long-lived runtime owned by this crate rather than on a
//! throwaway runtime per call. Calling `Runtime::block_on` from inside another tokio runtime
//! panics; in that case the call is made from a scoped helper thread instead, so the blocking
//! API works (it blocks the caller's thread, like any blocking call) from sync and async code.

use std::{future::Future, sync::OnceLock};

use tokio::runtime::{Handle, Runtime};

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("air-checkpoint-io")
            .enable_all()
            .build()
            .expect("air-checkpoint could not start its I/O runtime (out of threads?)")
    })
}

/// Runs `future` to completion from synchronous code, inside a tokio runtime or not.
pub(crate) fn block_on<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    if Handle::try_current().is_ok() {
        std::thread::scope(|scope| {
            scope
                .spawn(|| runtime().block_on(future))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    } else {
        runtime().block_on(future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_outside_a_runtime() {
        assert_eq!(block_on(async { 1 + 1 }), 2);
    }

    #[test]
    fn works_inside_a_current_thread_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let v = rt.block_on(async { block_on(async { 40 + 2 }) });
        assert_eq!(v, 42);
    }
}
