//! The collective across processes: TcpCollective against LocalCollective (bit-identical
//! results), joining errors within their timeout, diverging calls, and a rank killed with
//! SIGKILL failing the others with its rank named — with real processes (this test binary,
//! re-run as each rank).

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Command, Stdio},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

#[path = "common/slurm.rs"]
mod slurm;

use air_train::{
    Collective, LocalCollective, TrainError,
    cluster::{ProcessEnv, TcpCollective},
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env(rank: usize, world_size: usize, port: u16) -> ProcessEnv {
    ProcessEnv::from_vars(|name| match name {
        "RANK" => Some(rank.to_string()),
        "WORLD_SIZE" => Some(world_size.to_string()),
        "MASTER_ADDR" => Some("127.0.0.1".to_owned()),
        "MASTER_PORT" => Some(port.to_string()),
        _ => None,
    })
    .unwrap()
    .unwrap()
}

/// Every operation a trainer uses, on rank `rank` of `c`; the values each returned.
fn exercise(c: &dyn Collective, rank: usize) -> Result<Vec<Vec<f64>>, TrainError> {
    let mut out = Vec::new();
    let mut mean = [
        0.1f32.mul_add(rank as f32, 1.0 / 3.0),
        -2.5,
        1e-7 * rank as f32,
    ];
    c.all_reduce_mean(rank, &mut mean)?;
    out.push(mean.iter().map(|v| f64::from(*v)).collect());
    let mut sum = [0.1 * rank as f64, 1e300, -1e-300 * rank as f64, 1.0 / 7.0];
    c.all_reduce_sum_f64(rank, &mut sum)?;
    out.push(sum.to_vec());
    let mut b = if rank == 1 {
        vec![4.0, 5.0]
    } else {
        Vec::new()
    };
    c.broadcast(rank, 1, &mut b)?;
    out.push(b.iter().map(|v| f64::from(*v)).collect());
    c.barrier(rank)?;
    c.finish(rank)?;
    Ok(out)
}

#[test]
fn results_are_bit_identical_to_the_threaded_collective() {
    let world = 3;
    let local = Arc::new(LocalCollective::new(world));
    let expected: Vec<_> = (0..world)
        .map(|r| {
            let c = local.clone();
            thread::spawn(move || exercise(&*c, r).unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let port = free_port();
    let got: Vec<_> = (0..world)
        .map(|r| {
            thread::spawn(move || {
                let c = TcpCollective::connect(&env(r, world, port), Duration::from_secs(20))?;
                exercise(&c, r)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got[0][2], vec![4.0, 5.0]);
}

#[test]
fn joining_fails_within_its_timeout_naming_what_is_missing() {
    let port = free_port();
    let start = Instant::now();
    let err = TcpCollective::connect(&env(0, 3, port), Duration::from_millis(300)).unwrap_err();
    assert!(err.to_string().contains("ranks [1, 2]"), "{err}");
    let err = TcpCollective::connect(&env(1, 2, free_port()), Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("could not reach the coordinator 127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("torchrun-style variables"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn diverging_calls_fail_every_rank() {
    let port = free_port();
    let handles: Vec<_> = (0..2)
        .map(|r| {
            thread::spawn(move || {
                let c = TcpCollective::connect(&env(r, 2, port), Duration::from_secs(20)).unwrap();
                if r == 0 {
                    c.all_reduce_mean(0, &mut [1.0])
                } else {
                    c.barrier(1)
                }
            })
        })
        .collect();
    for h in handles {
        let err = h.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("diverged") && err.contains("barrier"), "{err}");
    }
}

/// Run as each rank by the multi-process tests: reduce forever (rank 2 stops answering after
/// three rounds and waits to be killed), printing each round.
#[test]
#[ignore = "a child process of the multi-process tests"]
#[allow(
    clippy::exit,
    reason = "the parent test reads this process's exit code"
)]
fn child_rank() {
    let env = ProcessEnv::from_env()
        .unwrap()
        .expect("a launcher's variables");
    println!("LAUNCHER {}", env.launcher);
    let c = TcpCollective::connect(&env, Duration::from_secs(20)).unwrap();
    let rounds: usize = std::env::var("AIR_TEST_ROUNDS").unwrap().parse().unwrap();
    for round in 0..rounds {
        if env.rank == 2 && std::env::var("AIR_TEST_HANG").is_ok() && round == 3 {
            println!("HANGING");
            thread::sleep(Duration::from_secs(600));
        }
        let mut v = [env.rank as f32 + round as f32];
        if let Err(e) = c.all_reduce_mean(env.rank, &mut v) {
            println!("ERROR {e}");
            std::process::exit(3);
        }
        println!("ROUND {round} {}", v[0]);
    }
    c.finish(env.rank).unwrap();
}

fn spawn_rank(rank: usize, world: usize, port: u16, hang: bool) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child_rank",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("RANK", rank.to_string())
    .env("WORLD_SIZE", world.to_string())
    .env("MASTER_ADDR", "127.0.0.1")
    .env("MASTER_PORT", port.to_string())
    .env("AIR_TEST_ROUNDS", "6")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if hang {
        cmd.env("AIR_TEST_HANG", "1");
    }
    cmd.spawn().unwrap()
}

/// The child's own lines (libtest may print `test child_rank ... ` before the first one).
fn marked(line: &str) -> Option<String> {
    ["ROUND", "ERROR", "HANGING"]
        .iter()
        .filter_map(|m| line.find(m))
        .min()
        .map(|i| line[i..].to_owned())
}

fn lines(child: &mut std::process::Child) -> Vec<String> {
    BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| marked(&l))
        .collect()
}

#[test]
fn three_processes_reduce_together() {
    let port = free_port();
    let mut children: Vec<_> = (0..3).map(|r| spawn_rank(r, 3, port, false)).collect();
    for child in &mut children {
        let out = lines(child);
        assert!(child.wait().unwrap().success(), "{out:?}");
        // Round k: the mean of k, k+1, k+2 is k+1.
        let expected: Vec<String> = (0..6).map(|k| format!("ROUND {k} {}", k + 1)).collect();
        assert_eq!(out, expected);
    }
}

#[test]
fn a_killed_rank_fails_the_others_naming_it() {
    let port = free_port();
    let mut children: Vec<_> = (0..3).map(|r| spawn_rank(r, 3, port, true)).collect();
    let mut victim = children.remove(2);
    // Wait until rank 2 stops answering, then SIGKILL it.
    let mut out = BufReader::new(victim.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("HANGING") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "rank 2 ended early");
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed = Instant::now();
    for (rank, child) in children.iter_mut().enumerate() {
        let out = lines(child);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "rank {rank}: {out:?}");
        let last = out.last().unwrap();
        assert!(
            last.starts_with("ERROR") && last.contains("lost rank 2"),
            "rank {rank}: {out:?}"
        );
    }
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "{:?}",
        killed.elapsed()
    );
}

#[test]
fn three_slurm_tasks_reduce_together() {
    if !slurm::available() {
        return;
    }
    let port = free_port();
    let out = Command::new("srun")
        .args(["-n", "3", "--overcommit", "--label", "--time", "2"])
        .arg(format!(
            "--export=ALL,AIR_COORDINATOR_PORT={port},AIR_TEST_ROUNDS=6"
        ))
        .arg(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_rank",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env_remove("RANK")
        .env_remove("WORLD_SIZE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each task read its rank from Slurm's variables.
    assert_eq!(stdout.matches("LAUNCHER Slurm").count(), 3, "{stdout}");
    for task in 0..3 {
        // `--label` prefixes each line with the task id: "1: ROUND 0 1".
        let prefix = format!("{task}: ");
        let rounds: Vec<String> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(marked)
            .collect();
        let expected: Vec<String> = (0..6).map(|k| format!("ROUND {k} {}", k + 1)).collect();
        assert_eq!(rounds, expected, "task {task}:\n{stdout}");
    }
}
