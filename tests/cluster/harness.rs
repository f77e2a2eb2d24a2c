//! A group of real `lsmdb serve --cluster` processes on loopback, each on ports picked free
//! at the start and kept across restarts (the membership records them), with a small HTTP
//! client (ureq) whose every call is bounded in time.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary::lsmdb_path;

pub const TOKEN: &str = "cluster-test-token";

/// How a group runs: short timings keep the tests quick.
#[derive(Clone, Debug)]
pub struct Timing {
    pub heartbeat_ms: u64,
    /// `--election-timeout-ms`: a stopped leader is replaced within twice this.
    pub election_ms: u64,
    pub request_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: 40,
            election_ms: 600,
            request_ms: 2000,
        }
    }
}

/// A reply: its status and JSON body (or the text, as a JSON string, if not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// One blocking HTTP client; a transport failure (refused, reset, timed out) is an `Err`.
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(Duration::from_millis(500)))
            .build()
            .into();
        Client { agent }
    }

    pub fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<&[u8]>,
        token: bool,
    ) -> Result<Reply, String> {
        let builder = ureq::http::Request::builder().method(method).uri(url);
        let builder = if token {
            builder.header("Authorization", format!("Bearer {TOKEN}"))
        } else {
            builder
        };
        let result = match body {
            Some(b) => self
                .agent
                .run(builder.body(b.to_vec()).map_err(|e| e.to_string())?),
            None => self.agent.run(builder.body(()).map_err(|e| e.to_string())?),
        };
        let mut response = result.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let raw = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        let body = serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
        Ok(Reply { status, body })
    }
}

pub struct NodeProc {
    pub http: SocketAddr,
    pub raft: SocketAddr,
    child: Option<Child>,
}

/// A group in a temporary directory: node `i`'s directory is `node<i>/`, its stderr
/// `node<i>.log` (kept across restarts).
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: BTreeMap<u64, NodeProc>,
    pub timing: Timing,
    /// Every node's address, HTTP and Raft (see `group_ip`).
    ip: IpAddr,
    extra: Vec<String>,
    pub client: Client,
}

/// A loopback address of this group's own (Linux answers all of 127.0.0.0/8): made of the
/// test process's id and a count, so no two groups, of this process or of another test run
/// on the machine, ever share one. A port picked free is released before the node binds
/// it; on a shared 127.0.0.1 another group could pick it in between, its node fail to bind,
/// and this group talk to the other group's node unknowingly.
fn group_ip() -> IpAddr {
    static GROUPS: AtomicU8 = AtomicU8::new(0);
    let n = GROUPS.fetch_add(1, Ordering::Relaxed);
    assert!(n < 250, "too many groups for one test process");
    let pid = std::process::id();
    Ipv4Addr::new(127, (pid >> 8) as u8, pid as u8, n + 2).into()
}

/// Ports the kernel says are free on `ip`, all held until all are picked, so none repeats.
fn free_addrs(ip: IpAddr, n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((ip, 0)).unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// Polls `ok` every 10 ms until it gives a value or `within` passes; the panic names what
/// never happened.
pub fn wait_for<T>(what: &str, within: Duration, mut ok: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = ok() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// How long the tests give a group for what takes a few election timeouts.
pub const PATIENCE: Duration = Duration::from_secs(30);

impl Cluster {
    /// Starts nodes 1..=n, forms a group of all of them with `lsmdb cluster init`, and
    /// waits for a leader. `extra` are more `serve` arguments for every node.
    pub fn start(n: u64, timing: Timing, extra: &[&str]) -> Cluster {
        let ip = group_ip();
        let addrs = free_addrs(ip, 2 * n as usize);
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            nodes: BTreeMap::new(),
            client: Client::new(Duration::from_millis(timing.request_ms * 3)),
            timing,
            ip,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for id in 1..=n {
            let i = (id as usize - 1) * 2;
            cluster.nodes.insert(
                id,
                NodeProc {
                    http: addrs[i],
                    raft: addrs[i + 1],
                    child: None,
                },
            );
            cluster.spawn(id);
        }
        for id in 1..=n {
            cluster.await_up(id);
        }
        let members: Vec<String> = cluster
            .nodes
            .iter()
            .map(|(id, p)| format!("{id}={}", p.http))
            .collect();
        let out = cluster
            .lsmdb()
            .args(["cluster", "--token", TOKEN, "init", &members.join(",")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lsmdb cluster init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.leader();
        cluster
    }

    /// The binary, with no environment leaking in from the developer's shell.
    pub fn lsmdb(&self) -> Command {
        let mut cmd = Command::new(lsmdb_path());
        for var in [
            "LSMDB_DIR",
            "LSMDB_TOKEN",
            "LSMDB_CLUSTER_TOKEN",
            "LSMDB_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    pub fn node_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{id}.log"))).unwrap_or_default()
    }

    /// Starts node `id`, new to the group, on ports of its own (for `add-learner`).
    pub fn add(&mut self, id: u64) {
        let addrs = free_addrs(self.ip, 2);
        let node = NodeProc {
            http: addrs[0],
            raft: addrs[1],
            child: None,
        };
        self.nodes.insert(id, node);
        self.spawn(id);
        self.await_up(id);
    }

    /// Starts node `id` (again) on its ports.
    pub fn spawn(&mut self, id: u64) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{id}.log")))
            .unwrap();
        let node = &self.nodes[&id];
        let t = &self.timing;
        let child = self
            .lsmdb()
            .env("LSMDB_TEST_FAULTS", "1")
            .env("LOG_LEVEL", "WARNING")
            .arg("--db")
            .arg(self.node_dir(id))
            .args(["serve", "--cluster", "--threads", "16"])
            .args(["--node-id", &id.to_string()])
            .args(["--addr", &node.http.to_string()])
            .args(["--raft-addr", &node.raft.to_string()])
            .args(["--cluster-token", TOKEN])
            .args(["--heartbeat-ms", &t.heartbeat_ms.to_string()])
            .args(["--election-timeout-ms", &t.election_ms.to_string()])
            .args(["--request-timeout-ms", &t.request_ms.to_string()])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes.get_mut(&id).unwrap().child = Some(child);
    }

    /// Waits until node `id` answers its status route.
    pub fn await_up(&mut self, id: u64) {
        let deadline = Instant::now() + PATIENCE;
        while self.status(id).is_none() {
            let child = self.nodes.get_mut(&id).unwrap().child.as_mut().unwrap();
            if let Some(status) = child.try_wait().unwrap() {
                panic!("node {id} exited ({status}):\n{}", self.log(id));
            }
            assert!(Instant::now() < deadline, "node {id} never came up");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.nodes.get_mut(&id).unwrap().child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn signal(&self, id: u64, signal: libc::c_int) {
        let child = self.nodes[&id].child.as_ref().expect("node is running");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({id}, {signal}) failed");
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.child.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn url(&self, id: u64, target: &str) -> String {
        format!("http://{}{target}", self.nodes[&id].http)
    }

    /// Node `id`'s `/cluster/status`, if it answers.
    pub fn status(&self, id: u64) -> Option<Value> {
        let reply = self
            .client
            .call("GET", &self.url(id, "/cluster/status"), None, true)
            .ok()?;
        (reply.status == 200).then_some(reply.body)
    }

    /// The leader that every node of `among` names, once they agree on one of them.
    pub fn leader_among(&self, among: &[u64], within: Duration) -> u64 {
        wait_for("a leader the nodes agree on", within, || {
            let mut leader = None;
            for id in among {
                let l = self.status(*id)?["leader"].as_u64()?;
                if leader.is_some_and(|x| x != l) {
                    return None;
                }
                leader = Some(l);
            }
            leader.filter(|l| among.contains(l))
        })
    }

    /// The leader all running nodes agree on.
    pub fn leader(&self) -> u64 {
        self.leader_among(&self.running(), PATIENCE)
    }

    /// Turns the partition switch of node `id` to drop Raft traffic with `peers`.
    pub fn block(&self, id: u64, peers: &[u64]) {
        let url = format!("http://{}/raft/faults", self.nodes[&id].raft);
        let body = json!({ "blocked": peers }).to_string();
        let reply = self
            .client
            .call("POST", &url, Some(body.as_bytes()), true)
            .unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    /// Cuts node `id` off from every other node, both ways.
    pub fn isolate(&self, id: u64) {
        let others: Vec<u64> = self.nodes.keys().copied().filter(|&o| o != id).collect();
        self.block(id, &others);
        for o in others {
            self.block(o, &[id]);
        }
    }

    /// Lifts every partition.
    pub fn heal(&self) {
        for id in self.running() {
            self.block(id, &[]);
        }
    }

    pub fn put(&self, id: u64, key: &str, value: &str) -> Result<Reply, String> {
        let body = json!({ "key": key, "value": value }).to_string();
        self.client
            .call("PUT", &self.url(id, "/keys"), Some(body.as_bytes()), false)
    }

    pub fn get(&self, id: u64, key: &str) -> Result<Reply, String> {
        self.client.call(
            "GET",
            &self.url(id, &format!("/keys?key={key}")),
            None,
            false,
        )
    }

    /// Waits until every running node has applied as far as the one furthest ahead, and
    /// returns that index.
    pub fn await_converged(&self) -> u64 {
        wait_for("every node applying the same entries", PATIENCE, || {
            let applied: Option<Vec<(u64, u64)>> = self
                .running()
                .iter()
                .map(|id| {
                    let s = self.status(*id)?;
                    Some((s["applied_index"].as_u64()?, s["last_log_index"].as_u64()?))
                })
                .collect();
            let applied = applied?;
            let first = applied[0];
            (first.0 == first.1 && applied.iter().all(|a| *a == first)).then_some(first.0)
        })
    }

    /// Everything in node `id`'s data directory, as `lsmdb dump` writes it (a read-only
    /// open beside the running node), the cluster's reserved keys included.
    pub fn dump(&self, id: u64) -> Vec<u8> {
        let out = self
            .lsmdb()
            .arg("--db")
            .arg(self.node_dir(id).join("data"))
            .args(["dump", "--quiet"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lsmdb dump of node {id}'s data: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Asserts that every running node holds the same data, byte for byte.
    pub fn assert_identical(&self) {
        self.await_converged();
        let nodes = self.running();
        let first = self.dump(nodes[0]);
        assert!(!first.is_empty());
        for id in &nodes[1..] {
            let other = self.dump(*id);
            assert!(
                other == first,
                "node {id}'s data differs from node {}'s:\n{}\n---\n{}",
                nodes[0],
                String::from_utf8_lossy(&other),
                String::from_utf8_lossy(&first)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                // SAFETY: as in `signal`; a paused node must be woken to die cleanly.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
