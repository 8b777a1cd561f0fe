//! Starting ignored tests of the current test binary as the ranks of one multi-process run,
//! with torchrun-style variables on 127.0.0.1.

use std::{
    net::TcpListener,
    process::{Child, Command, Output, Stdio},
};

/// Starts the ignored test `child` as ranks `0..world` of one run, all at once, each with
/// `vars` set too.
pub(crate) fn spawn_ranks(child: &str, world: usize, vars: &[(&str, String)]) -> Vec<Child> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (0..world)
        .map(|rank| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--ignored", "--exact", child, "--nocapture"])
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", world.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", port.to_string())
                .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// Waits for every rank; their outputs, in rank order.
pub(crate) fn wait_all(children: Vec<Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Waits for every rank, killing them all and failing the test if any is still running after
/// `limit` (a hang); their outputs, in rank order.
pub(crate) fn wait_all_within(mut children: Vec<Child>, limit: std::time::Duration) -> Vec<Output> {
    let deadline = std::time::Instant::now() + limit;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        if std::time::Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
            }
            let outputs = wait_all(children);
            let stderr: Vec<_> = outputs
                .iter()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .collect();
            panic!("the ranks were still running after {limit:?}: {stderr:#?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    wait_all(children)
}

/// Asserts every rank succeeded.
pub(crate) fn assert_all_succeeded(outputs: &[Output]) {
    for (rank, out) in outputs.iter().enumerate() {
        assert!(
            out.status.success(),
            "rank {rank}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The JSON a child printed after `RESULT `, one per line that has it.
pub(crate) fn results(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.find("RESULT ")
                .map(|i| serde_json::from_str(&l[i + 7..]).unwrap())
        })
        .collect()
}
