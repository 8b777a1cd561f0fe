//! The Pipeline API: Ray's pipeline tests in every execution mode, evaluation once per node,
//! concurrency of branches, batching, build-time errors, step failures, limits and teardown.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use air_serve::{
    ServeError,
    pipeline::{
        ExecutionMode, GraphBuilder, INPUT, INPUT_NAME, Model, Node, PipelineConfig, PipelineError,
        Step, StepError, Value,
    },
};

/// Every execution mode; each test runs in all of them and expects the same answers.
const MODES: [ExecutionMode; 3] = [
    ExecutionMode::Local,
    ExecutionMode::Tasks,
    ExecutionMode::Replicas { num_replicas: 2 },
];

fn string_step(name: &str, mode: ExecutionMode, f: fn(String) -> String) -> Step<String, String> {
    Step::new(name, f).with_mode(mode)
}

#[test]
fn echo_add_one_double_and_adder_in_every_mode() {
    struct Adder(i64);
    impl Model<i64> for Adder {
        type Output = i64;
        fn call(&self, x: i64) -> Result<i64, StepError> {
            Ok(self.0 + x)
        }
    }
    for mode in MODES {
        let echo = Step::new("echo", |x: i64| x).with_mode(mode);
        assert_eq!(
            echo.on(INPUT).deploy().unwrap().call(42).unwrap(),
            42,
            "{mode:?}"
        );

        let add_one = Step::new("add_one", |x: i64| x + 1).with_mode(mode);
        // Ray's `double` squares: 1 + 1 = 2, 2 ** 2 = 4.
        let double = Step::new("double", |x: i64| x * x).with_mode(mode);
        let p = double.on(add_one.on(INPUT)).deploy().unwrap();
        assert_eq!(p.call(1).unwrap(), 4, "{mode:?}");

        let adder = Step::model("adder", || Adder(2)).with_mode(mode);
        assert_eq!(
            adder.on(INPUT).deploy().unwrap().call(2).unwrap(),
            4,
            "{mode:?}"
        );
    }
}

#[test]
fn rays_string_pipelines_in_every_mode() {
    struct Greeter(String);
    impl Model<String> for Greeter {
        type Output = String;
        fn call(&self, name: String) -> Result<String, StepError> {
            Ok(self.0.replace("{}", &name))
        }
    }
    let join = |v: Vec<String>| v.join("|");
    for mode in MODES {
        let step1 = string_step("step1", mode, |s| format!("{s}|step1"));
        let step2 = string_step("step2", mode, |s| format!("{s}|step2"));
        let sequential = step2.on(step1.on(INPUT)).deploy().unwrap();
        assert_eq!(
            sequential.call("HELLO".into()).unwrap(),
            "HELLO|step1|step2"
        );

        // Fan-out from one node, fan-in into a combiner.
        let step1 = string_step("step1", mode, |s| s);
        let step2_1 = string_step("step2_1", mode, |s| format!("step2_1_{s}"));
        let step2_2 = string_step("step2_2", mode, |s| format!("step2_2_{s}"));
        let step3 = Step::new("step3", join).with_mode(mode);
        let out1 = step1.on(INPUT);
        let fan = step3
            .on(vec![step2_1.on(out1.clone()), step2_2.on(out1)])
            .deploy()
            .unwrap();
        assert_eq!(
            fan.call("HELLO".into()).unwrap(),
            "step2_1_HELLO|step2_2_HELLO"
        );

        // Two consumers of INPUT.
        let step1 = string_step("step1", mode, |s| format!("step1_{s}"));
        let step2 = string_step("step2", mode, |s| format!("step2_{s}"));
        let combine =
            Step::new("combine", |(a, b): (String, String)| format!("{a}|{b}")).with_mode(mode);
        let two = combine
            .on((step1.on(INPUT), step2.on(INPUT)))
            .deploy()
            .unwrap();
        assert_eq!(two.call("HELLO".into()).unwrap(), "step1_HELLO|step2_HELLO");

        // A class step with an init argument.
        let greeter =
            Step::model("greeter", || Greeter("Top of the morning {}!".into())).with_mode(mode);
        let greet = greeter.on(INPUT).deploy().unwrap();
        assert_eq!(
            greet.call("Theodore".into()).unwrap(),
            "Top of the morning Theodore!"
        );

        // A class and a function combined.
        let howdy = Step::model("howdy", || Greeter("Howdy {}!".into())).with_mode(mode);
        let hanging = string_step("hanging", mode, |s| format!("How's it hanging, {s}?"));
        let combiner = Step::new("combiner", join).with_mode(mode);
        let mixed = combiner
            .on(vec![howdy.on(INPUT), hanging.on(INPUT)])
            .deploy()
            .unwrap();
        assert_eq!(
            mixed.call("Teddy".into()).unwrap(),
            "Howdy Teddy!|How's it hanging, Teddy?"
        );
    }
}

/// Counts instances alive and built.
#[derive(Default)]
struct Census {
    built: AtomicUsize,
    alive: AtomicUsize,
}

struct Counted(Arc<Census>);

impl Counted {
    fn new(census: &Arc<Census>) -> Self {
        census.built.fetch_add(1, Ordering::SeqCst);
        census.alive.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(census))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Model<u32> for Counted {
    type Output = u32;
    fn call(&self, x: u32) -> Result<u32, StepError> {
        Ok(x + 1)
    }
}

#[test]
fn constructors_run_at_deploy_once_per_replica_and_drop_joins_them() {
    for (mode, instances) in [
        (ExecutionMode::Local, 1),
        (ExecutionMode::Tasks, 1),
        (ExecutionMode::Replicas { num_replicas: 3 }, 3),
    ] {
        let census = Arc::new(Census::default());
        let c = Arc::clone(&census);
        let step = Step::model("counted", move || Counted::new(&c)).with_mode(mode);
        let node = step.on(INPUT);
        assert_eq!(
            census.built.load(Ordering::SeqCst),
            0,
            "built before deploy"
        );
        let pipeline = node.deploy().unwrap();
        assert_eq!(census.built.load(Ordering::SeqCst), instances, "{mode:?}");
        let clone = pipeline.clone();
        for i in 0..10 {
            assert_eq!(clone.call(i).unwrap(), i + 1);
        }
        assert_eq!(census.built.load(Ordering::SeqCst), instances, "built once");
        drop(pipeline);
        assert_eq!(
            census.alive.load(Ordering::SeqCst),
            instances,
            "a clone keeps it"
        );
        drop(clone);
        // Dropping the last handle joined the replica threads, which dropped their instances.
        assert_eq!(census.alive.load(Ordering::SeqCst), 0, "{mode:?}");
    }
}

#[test]
fn each_node_runs_once_per_call_however_many_consume_it() {
    for mode in MODES {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&runs);
        let shared = Step::new("shared", move |x: i64| {
            r.fetch_add(1, Ordering::SeqCst);
            x * 10
        })
        .with_mode(mode);
        let a = Step::new("a", |x: i64| x + 1).with_mode(mode);
        let b = Step::new("b", |x: i64| x + 2).with_mode(mode);
        let sum = Step::new("sum", |v: Vec<i64>| v.iter().sum::<i64>()).with_mode(mode);
        let s = shared.on(INPUT);
        // `shared` feeds three consumers, one of them twice.
        let p = sum
            .on(vec![a.on(s.clone()), b.on(s.clone()), s.clone(), s])
            .deploy()
            .unwrap();
        assert_eq!(p.call(1).unwrap(), 11 + 12 + 10 + 10);
        assert_eq!(p.call(2).unwrap(), 21 + 22 + 20 + 20);
        assert_eq!(runs.load(Ordering::SeqCst), 2, "{mode:?}: once per call");
        let steps = p.steps();
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["shared", "a", "b", "sum"]);
        assert!(steps.iter().all(|s| s.calls == 2), "{steps:?}");
        assert_eq!(steps[3].inputs, ["a", "b", "shared", "shared"]);
    }
}

/// A step that meets its twin: each sends on one channel and waits on the other, so the call
/// completes only if both run at the same time.
fn rendezvous(mode: ExecutionMode) -> Node<u8, String> {
    let (to_b, from_a) = mpsc::sync_channel::<()>(1);
    let (to_a, from_b) = mpsc::sync_channel::<()>(1);
    let meet = |name: &str, tx: mpsc::SyncSender<()>, rx: mpsc::Receiver<()>| {
        let rx = Mutex::new(rx);
        let label = name.to_owned();
        Step::try_new(name, move |_: u8| {
            tx.send(()).map_err(|e| e.to_string())?;
            rx.lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "the other branch never ran alongside this one")?;
            Ok::<_, StepError>(label.clone())
        })
        .with_mode(mode)
    };
    let a = meet("a", to_b, from_b);
    let b = meet("b", to_a, from_a);
    Step::new("join", |(a, b): (String, String)| format!("{a}+{b}")).on((a.on(INPUT), b.on(INPUT)))
}

#[test]
fn independent_branches_run_concurrently() {
    for mode in [
        ExecutionMode::Tasks,
        ExecutionMode::Replicas { num_replicas: 1 },
    ] {
        let config = PipelineConfig::new("meet").with_task_threads(NonZeroUsize::new(2).unwrap());
        let p = rendezvous(mode).deploy_with(config).unwrap();
        assert_eq!(p.call(0).unwrap(), "a+b", "{mode:?}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(
            rt.block_on(p.call_async(0)).unwrap(),
            "a+b",
            "{mode:?} async"
        );
    }
}

#[test]
fn call_async_equals_call_in_every_mode() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for mode in MODES {
        let step1 = string_step("step1", mode, |s| format!("{s}|step1"));
        let step2 = string_step("step2", mode, |s| format!("{s}|step2"));
        let p = step2.on(step1.on(INPUT)).deploy().unwrap();
        let answers = rt.block_on(async {
            let calls = (0..20).map(|i| p.call_async(format!("x{i}")));
            futures::future::join_all(calls).await
        });
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(a.unwrap(), p.call(format!("x{i}")).unwrap());
        }
    }
}

#[test]
fn build_time_errors_are_typed() {
    let combine = Step::new("combine", |v: Vec<i64>| v.len());
    let unconnected: Node<i64, usize> = combine.on(Vec::<Node<i64, i64>>::new());
    match unconnected.deploy() {
        Err(ServeError::Pipeline(PipelineError::NotConnected { step })) => {
            assert_eq!(step, "combine")
        }
        other => panic!("{other:?}"),
    }
    let zero = Step::new("zero", |x: i64| x).with_mode(ExecutionMode::Replicas { num_replicas: 0 });
    let err = zero.on(INPUT).deploy().unwrap_err();
    assert!(
        matches!(&err, ServeError::Pipeline(PipelineError::InvalidStep { step, field: "num_replicas", .. }) if step == "zero"),
        "{err}"
    );
    let batched_local =
        Step::new("b", |x: i64| x).with_batching(NonZeroUsize::new(8).unwrap(), Duration::ZERO);
    let err = batched_local.on(INPUT).deploy().unwrap_err();
    assert!(
        err.to_string().contains("use Tasks or Replicas to batch"),
        "{err}"
    );

    let census = Arc::new(Census::default());
    let c = Arc::clone(&census);
    let failing = Step::try_model("loader", move || {
        if c.built.fetch_add(1, Ordering::SeqCst) == 1 {
            return Err("weights file missing");
        }
        Ok(Counted::new(&Arc::new(Census::default())))
    })
    .with_mode(ExecutionMode::Replicas { num_replicas: 2 });
    let err = failing.on(INPUT).deploy().unwrap_err();
    assert!(
        matches!(&err, ServeError::Pipeline(PipelineError::StepInit { step, .. }) if step == "loader"),
        "{err}"
    );
    assert!(err.to_string().contains("weights file missing"), "{err}");
    let panicking = Step::model("boom", || -> Counted { panic!("no GPU") });
    let err = panicking.on(INPUT).deploy().unwrap_err();
    assert!(err.to_string().contains("panicked: no GPU"), "{err}");
    let err = Step::new("e", |x: i64| x)
        .on(INPUT)
        .deploy_with(PipelineConfig::new("bad name"))
        .unwrap_err();
    assert!(err.to_string().contains("deployment name"), "{err}");
}

#[test]
fn a_failing_or_panicking_step_fails_only_that_call() {
    for mode in MODES {
        let parse = Step::try_new("parse", |s: String| {
            s.parse::<i64>().map_err(StepError::bad_input)
        })
        .with_mode(mode);
        let divide = Step::try_new("divide", |x: i64| {
            if x == 13 {
                panic!("unlucky {x}");
            }
            100i64.checked_div(x).ok_or("division by zero")
        })
        .with_mode(mode);
        let p = divide.on(parse.on(INPUT)).deploy().unwrap();
        match p.call("x".into()) {
            Err(e @ ServeError::StepRejected { .. }) => {
                assert_eq!(e.status(), 422);
                assert!(e.to_string().contains("step \"parse\""), "{e}");
                assert!(e.to_string().contains("invalid digit"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        match p.call("0".into()) {
            Err(e @ ServeError::StepFailed { .. }) => {
                assert_eq!(e.status(), 500);
                assert!(
                    e.to_string()
                        .contains("step \"divide\" failed: division by zero"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
        match p.call("13".into()) {
            Err(ServeError::StepPanicked { step, message, .. }) => {
                assert_eq!((step.as_str(), message.as_str()), ("divide", "unlucky 13"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.call("4".into()).unwrap(), 25, "{mode:?}: still serving");
        let divide = &p.steps()[1];
        assert_eq!((divide.calls, divide.errors), (3, 2), "{mode:?}");
    }
}

/// A step that blocks until released, and says when it has started.
fn gated(mode: ExecutionMode) -> (Step<u32, u32>, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
    let step = Step::new("gate", move |x: u32| {
        started_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        x
    })
    .with_mode(mode);
    (step, started_rx, release_tx)
}

#[test]
fn timeouts_overload_and_shutdown() {
    let (step, started, release) = gated(ExecutionMode::Replicas { num_replicas: 1 });
    let config = PipelineConfig::new("gated")
        .with_request_timeout(Some(Duration::from_millis(50)))
        .with_max_concurrent_queries(NonZeroUsize::new(1).unwrap());
    let p = step.on(INPUT).deploy_with(config).unwrap();
    let caller = {
        let p = p.clone();
        std::thread::spawn(move || p.call(1))
    };
    started.recv().unwrap();
    // The first call holds the only slot: the next is refused at once.
    match p.call(2) {
        Err(e @ ServeError::Overloaded { .. }) => assert_eq!(e.status(), 503),
        other => panic!("{other:?}"),
    }
    // The first call times out while its step is still blocked.
    match caller.join().unwrap() {
        Err(e @ ServeError::Timeout { .. }) => assert_eq!(e.status(), 408),
        other => panic!("{other:?}"),
    }
    release.send(()).unwrap();
    release.send(()).unwrap();
    assert_eq!(p.call(3).unwrap(), 3);
    p.shutdown();
    assert!(matches!(p.call(4), Err(ServeError::ShutDown(_))));
}

/// Records the size of every batch it is given.
struct Batches(Arc<Mutex<Vec<usize>>>, Mutex<mpsc::Receiver<()>>);

impl Model<u32> for Batches {
    type Output = u32;
    fn call(&self, x: u32) -> Result<u32, StepError> {
        self.call_batch(vec![x]).pop().unwrap()
    }
    fn call_batch(&self, xs: Vec<u32>) -> Vec<Result<u32, StepError>> {
        self.0.lock().unwrap().push(xs.len());
        if xs == [0] {
            // The first call waits until the others have queued.
            self.1.lock().unwrap().recv().unwrap();
        }
        xs.into_iter().map(|x| Ok(x * 2)).collect()
    }
}

#[test]
fn queued_calls_are_batched_up_to_the_max() {
    for mode in [
        ExecutionMode::Tasks,
        ExecutionMode::Replicas { num_replicas: 1 },
    ] {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (release, gate) = mpsc::channel();
        let gate = Arc::new(Mutex::new(Some(gate)));
        let s = Arc::clone(&sizes);
        let step = Step::model("batched", move || {
            Batches(
                Arc::clone(&s),
                Mutex::new(gate.lock().unwrap().take().unwrap()),
            )
        })
        .with_mode(mode)
        .with_batching(NonZeroUsize::new(4).unwrap(), Duration::ZERO);
        let config = PipelineConfig::new("b").with_task_threads(NonZeroUsize::new(1).unwrap());
        let p = step.on(INPUT).deploy_with(config).unwrap();
        let first = {
            let p = p.clone();
            std::thread::spawn(move || p.call(0))
        };
        while sizes.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        let rest: Vec<_> = (1..=6)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || p.call(i))
            })
            .collect();
        while p.steps()[0].queued < 6 {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        assert_eq!(first.join().unwrap().unwrap(), 0);
        for (i, t) in rest.into_iter().enumerate() {
            assert_eq!(t.join().unwrap().unwrap(), 2 * (i as u32 + 1));
        }
        assert_eq!(*sizes.lock().unwrap(), [1, 4, 2], "{mode:?}");
    }
}

fn tag(prefix: &'static str) -> Step<Value, Value> {
    Step::new(prefix, move |v: Value| {
        Value::from(serde_json::json!(format!(
            "{prefix}_{}",
            v.into_json().as_str().unwrap()
        )))
    })
}

fn join_values() -> Step<Vec<Value>, Value> {
    Step::new("step3", |vs: Vec<Value>| {
        let parts: Vec<String> = vs
            .into_iter()
            .map(|v| v.into_json().as_str().unwrap().to_owned())
            .collect();
        Value::from(serde_json::json!(parts.join("|")))
    })
}

#[test]
fn a_graph_built_by_name_equals_the_typed_one() {
    for mode in MODES {
        let by_name = GraphBuilder::new()
            .step(tag("step2_1").with_mode(mode), ["step1"])
            .step(
                Step::new("step1", |v: Value| v).with_mode(mode),
                [INPUT_NAME],
            )
            .step(tag("step2_2").with_mode(mode), ["step1"])
            .combiner(
                join_values().with_mode(mode),
                ["step2_1", "step2_2", INPUT_NAME],
            )
            .build()
            .unwrap()
            .deploy()
            .unwrap();
        let out = by_name
            .call(Value::from(serde_json::json!("HELLO")))
            .unwrap();
        assert_eq!(
            out.into_json(),
            "step2_1_HELLO|step2_2_HELLO|HELLO",
            "{mode:?}"
        );
        let names: Vec<String> = by_name.steps().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["step1", "step2_1", "step2_2", "step3"]);
    }
}

#[test]
fn a_graph_built_by_name_reports_its_mistakes() {
    let echo = |name: &str| Step::new(name, |v: Value| v);
    let err = |b: GraphBuilder| b.build().unwrap_err();
    let cycle = err(GraphBuilder::new()
        .step(echo("a"), ["c"])
        .step(echo("b"), ["a"])
        .step(echo("c"), ["b"])
        .output("a"));
    match &cycle {
        PipelineError::Cycle { cycle } => assert_eq!(cycle, &["a", "c", "b", "a"]),
        other => panic!("{other:?}"),
    }
    assert!(cycle.to_string().contains("a -> c -> b -> a"), "{cycle}");
    let unknown = err(GraphBuilder::new().step(echo("a"), ["INPTU"]));
    assert!(
        matches!(&unknown, PipelineError::UnknownInput { step, input, .. } if step == "a" && input == "INPTU"),
        "{unknown}"
    );
    let duplicate = err(GraphBuilder::new()
        .step(echo("a"), [INPUT_NAME])
        .step(echo("a"), ["a"]));
    assert!(
        matches!(&duplicate, PipelineError::DuplicateName(n) if n == "a"),
        "{duplicate}"
    );
    let unconnected = err(GraphBuilder::new().combiner(join_values(), Vec::<&str>::new()));
    assert!(
        matches!(&unconnected, PipelineError::NotConnected { .. }),
        "{unconnected}"
    );
    let arity = err(GraphBuilder::new().step(echo("a"), [INPUT_NAME, INPUT_NAME]));
    assert!(
        matches!(&arity, PipelineError::Arity { got: 2, .. }),
        "{arity}"
    );
    let unused = err(GraphBuilder::new()
        .step(echo("a"), [INPUT_NAME])
        .step(echo("b"), [INPUT_NAME]));
    assert!(
        matches!(&unused, PipelineError::NotUsed { step, output } if step == "a" && output == "b"),
        "{unused}"
    );
    let output = err(GraphBuilder::new()
        .step(echo("a"), [INPUT_NAME])
        .output("z"));
    assert!(
        matches!(&output, PipelineError::UnknownInput { input, .. } if input == "z"),
        "{output}"
    );
    // Typed nodes of one step get suffixes; a clash even so is an error.
    let a = Step::new("a", |x: i64| x);
    let clash = Step::new("a#2", |(x, y, z): (i64, i64, i64)| x + y + z).on((
        a.on(INPUT),
        a.on(INPUT),
        INPUT,
    ));
    let e = clash.deploy().unwrap_err();
    assert!(e.to_string().contains("two steps are named \"a#2\""), "{e}");
}

#[test]
fn replicas_serve_calls_side_by_side() {
    // Each call waits (bounded) until two calls are inside the step at once: the two calls
    // both succeed only if two replicas run them side by side.
    let inside = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let threads = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let (i, t) = (Arc::clone(&inside), Arc::clone(&threads));
    let step = Step::try_new("pair", move |x: u32| {
        t.lock()
            .unwrap()
            .insert(std::thread::current().name().unwrap().to_owned());
        let (count, changed) = &*i;
        let mut n = count.lock().unwrap();
        *n += 1;
        changed.notify_all();
        let (n, timeout) = changed
            .wait_timeout_while(n, Duration::from_secs(30), |n| *n < 2)
            .unwrap();
        drop(n);
        if timeout.timed_out() {
            return Err("the other call never ran alongside this one");
        }
        Ok(x)
    })
    .with_mode(ExecutionMode::Replicas { num_replicas: 2 });
    let p = step.on(INPUT).deploy().unwrap();
    let calls: Vec<_> = (0..2)
        .map(|x| {
            let p = p.clone();
            std::thread::spawn(move || p.call(x))
        })
        .collect();
    for (x, c) in calls.into_iter().enumerate() {
        assert_eq!(c.join().unwrap().unwrap(), x as u32);
    }
    assert_eq!(threads.lock().unwrap().len(), 2, "two replica threads");
}

#[test]
fn each_replica_is_built_knowing_its_index() {
    for (mode, expected) in [
        (ExecutionMode::Local, vec![0]),
        (ExecutionMode::Tasks, vec![0]),
        (ExecutionMode::Replicas { num_replicas: 3 }, vec![0, 1, 2]),
    ] {
        let built = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::clone(&built);
        let step = Step::try_model_per_replica("indexed", move |replica| {
            b.lock().unwrap().push(replica);
            Ok::<_, String>(Counted::new(&Arc::new(Census::default())))
        })
        .with_mode(mode);
        let p = step.on(INPUT).deploy().unwrap();
        assert_eq!(p.call(1).unwrap(), 2);
        let mut indices = built.lock().unwrap().clone();
        indices.sort_unstable();
        assert_eq!(indices, expected, "{mode:?}");
    }
}
