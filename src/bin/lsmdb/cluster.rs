//! `lsmdb cluster`: administering a replicated group through a node's admin routes
//! (`/cluster/...` on its HTTP address, behind the group's token; `lsmdb::server` has them).
//!
//! Nodes are named by id and HTTP address, `ID=HOST:PORT`: each node is asked for its Raft
//! address at that address (`GET /cluster/status`), which also checks that the id is the
//! one it was started with. A membership change sent to a follower comes back as a 307 to
//! the leader, which is followed once.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::output::Out;

#[derive(Args, Debug)]
#[command(
    about = "Administer a replicated group of `lsmdb serve --cluster` nodes",
    after_help = "Nodes are named ID=HOST:PORT, their HTTP address (what --addr or --advertise-addr says).\n\n\
                  Examples (docs/CLUSTER.md):\n  \
                  lsmdb cluster init 1=127.0.0.1:8081,2=127.0.0.1:8082,3=127.0.0.1:8083\n  \
                  lsmdb cluster --connect 127.0.0.1:8081 status\n  \
                  lsmdb cluster --connect 127.0.0.1:8081 add-learner 4=127.0.0.1:8084\n  \
                  lsmdb cluster --connect 127.0.0.1:8081 promote 4\n  \
                  lsmdb cluster --connect 127.0.0.1:8081 remove 4"
)]
pub struct ClusterArgs {
    /// The node to ask (any node; membership changes are sent on to the leader).
    #[arg(
        long,
        env = "LSMDB_URL",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8080"
    )]
    connect: String,

    /// The group's token (what the nodes got as --cluster-token).
    #[arg(
        long,
        env = "LSMDB_CLUSTER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Role, leader, term, last log index, applied index and, on the leader, each
    /// follower's lag
    Status {
        /// Print the node's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make new, empty nodes the first members of a group (sent to the first one named)
    Init {
        /// Every member: ID=HOST:PORT,ID=HOST:PORT,...
        #[arg(value_name = "ID=HOST:PORT,...")]
        members: String,
    },
    /// Add a running node as a learner: it receives the log but does not vote; returns once
    /// it has caught up
    AddLearner {
        /// The new node: its id and its HTTP address.
        #[arg(value_name = "ID=HOST:PORT")]
        node: String,
    },
    /// Make learners voters
    Promote {
        /// The learners to make voters.
        #[arg(value_name = "ID", required = true)]
        ids: Vec<u64>,
    },
    /// Take a node out of the group (a voter or a learner)
    Remove {
        /// The node to take out.
        #[arg(value_name = "ID")]
        id: u64,
    },
    /// Build a snapshot of the node's data now (and with --purge drop the log it covers)
    Snapshot {
        /// Also drop the log entries the snapshot covers.
        #[arg(long)]
        purge: bool,
    },
}

/// How long a membership change may take: a learner is caught up before it is added.
const TIMEOUT: Duration = Duration::from_secs(90);

struct Admin {
    agent: ureq::Agent,
    token: Option<String>,
}

/// `http://HOST:PORT` for `HOST:PORT` or a URL.
fn base(addr: &str) -> String {
    let addr = addr.trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

impl Admin {
    fn new(token: Option<String>) -> Admin {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(TIMEOUT))
            .build()
            .into();
        Admin { agent, token }
    }

    /// A request to `path` on the node at `addr`: the JSON reply of a 200, the error it
    /// gives otherwise. A 307 (a follower naming the leader) is followed once.
    fn call(&self, addr: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut url = format!("{}{path}", base(addr));
        for _ in 0..2 {
            let mut response = match body {
                Some(body) => {
                    let mut req = self.agent.post(&url);
                    if let Some(t) = &self.token {
                        req = req.header("Authorization", format!("Bearer {t}"));
                    }
                    req.content_type("application/json")
                        .send(body.to_string().as_bytes())
                }
                None => {
                    let mut req = self.agent.get(&url);
                    if let Some(t) = &self.token {
                        req = req.header("Authorization", format!("Bearer {t}"));
                    }
                    req.call()
                }
            }
            .with_context(|| format!("cannot reach {url}"))?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("Location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = response
                .body_mut()
                .read_to_string()
                .with_context(|| format!("reading the reply of {url}"))?;
            let reply: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            match (status, location) {
                (200, _) => return Ok(reply),
                (307, Some(next)) => url = next,
                _ => {
                    let why = reply["error"]
                        .as_str()
                        .map_or(reply.to_string(), str::to_string);
                    bail!("{url} answered {status}: {why}");
                }
            }
        }
        bail!("{url}: redirected again; the group is changing leaders, try again")
    }

    /// The node at `addr`, checked to be `id`, as the membership lists it.
    fn describe(&self, id: u64, addr: &str) -> anyhow::Result<Value> {
        let status = self.call(addr, "/cluster/status", None)?;
        let found = status["id"].as_u64();
        if found != Some(id) {
            bail!(
                "the node at {addr} is node {}, not {id}",
                found.map_or("?".to_string(), |f| f.to_string())
            );
        }
        let raft = status["raft_addr"]
            .as_str()
            .ok_or_else(|| anyhow!("{addr} did not say its Raft address"))?;
        Ok(json!({"raft_addr": raft, "http_addr": addr}))
    }
}

/// `ID=HOST:PORT`.
fn parse_member(text: &str) -> anyhow::Result<(u64, String)> {
    let (id, addr) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("{text:?}: expected ID=HOST:PORT"))?;
    let id = id
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| anyhow!("{text:?}: the id must be a positive number"))?;
    let addr = addr
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if addr.is_empty() {
        bail!("{text:?}: no address after the =");
    }
    Ok((id, addr.to_string()))
}

pub fn run(args: &ClusterArgs) -> anyhow::Result<u8> {
    let admin = Admin::new(args.token.clone());
    let mut out = Out::new();
    let reply = match &args.command {
        ClusterCommand::Status { json } => {
            let status = admin.call(&args.connect, "/cluster/status", None)?;
            if *json {
                out.json(&status)?;
            } else {
                print_status(&mut out, &status)?;
            }
            out.flush()?;
            return Ok(0);
        }
        ClusterCommand::Init { members } => {
            let mut nodes = BTreeMap::new();
            let mut first = None;
            for text in members.split(',').filter(|m| !m.trim().is_empty()) {
                let (id, addr) = parse_member(text)?;
                if nodes.insert(id, admin.describe(id, &addr)?).is_some() {
                    bail!("node {id} is named twice");
                }
                first.get_or_insert(addr);
            }
            let first = first.ok_or_else(|| anyhow!("no members given"))?;
            let body = json!({ "members": nodes });
            admin.call(&first, "/cluster/init", Some(&body))?
        }
        ClusterCommand::AddLearner { node } => {
            let (id, addr) = parse_member(node)?;
            let mut body = admin.describe(id, &addr)?;
            body["id"] = id.into();
            admin.call(&args.connect, "/cluster/add-learner", Some(&body))?
        }
        ClusterCommand::Promote { ids } => admin.call(
            &args.connect,
            "/cluster/promote",
            Some(&json!({ "ids": ids })),
        )?,
        ClusterCommand::Remove { id } => {
            admin.call(&args.connect, "/cluster/remove", Some(&json!({ "id": id })))?
        }
        ClusterCommand::Snapshot { purge } => admin.call(
            &args.connect,
            "/cluster/snapshot",
            Some(&json!({ "purge": purge })),
        )?,
    };
    match reply.get("snapshot_index") {
        Some(index) => out.line(&format!("OK (snapshot at index {index})"))?,
        None => out.line("OK")?,
    }
    out.flush()?;
    Ok(0)
}

/// The status as a few lines for people.
fn print_status(out: &mut Out, s: &Value) -> std::io::Result<()> {
    let num = |v: &Value| v.as_u64().map_or("-".to_string(), |n| n.to_string());
    let ids = |v: &Value| {
        let list: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(num).collect())
            .unwrap_or_default();
        if list.is_empty() {
            "-".to_string()
        } else {
            list.join(" ")
        }
    };
    out.line(&format!(
        "node {}  {}  term {}  leader {}",
        num(&s["id"]),
        s["role"].as_str().unwrap_or("?"),
        num(&s["term"]),
        num(&s["leader"]),
    ))?;
    out.line(&format!(
        "last log {}  applied {}  snapshot {}  purged {}",
        num(&s["last_log_index"]),
        num(&s["applied_index"]),
        num(&s["snapshot_index"]),
        num(&s["purged_index"]),
    ))?;
    out.line(&format!(
        "voters {}  learners {}",
        ids(&s["voters"]),
        ids(&s["learners"])
    ))?;
    if let Some(nodes) = s["nodes"].as_object() {
        for (id, node) in nodes {
            out.line(&format!(
                "  node {id}: http {}  raft {}",
                node["http_addr"].as_str().unwrap_or("?"),
                node["raft_addr"].as_str().unwrap_or("?"),
            ))?;
        }
    }
    if let Some(followers) = s["followers"].as_array().filter(|f| !f.is_empty()) {
        out.line("follower  matched  lag")?;
        for f in followers {
            out.line(&format!(
                "{:<9} {:<8} {}",
                num(&f["id"]),
                num(&f["matched"]),
                num(&f["lag"])
            ))?;
        }
    }
    Ok(())
}
