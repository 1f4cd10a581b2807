//! A real one-node cluster for e2e tests: Debian's containerd (with runc) and kubelet,
//! kube-scheduler and kube-controller-manager (built by `scripts/control-plane --node`) against
//! a private control plane, everything on loopback, as `../shared/kubernetes-node-facts.md`
//! records it working on this kind of machine. Needs root (kubelet and runc do).
//!
//! kubelet and containerd change the host outside their folders (iptables chains, cgroups,
//! mounts, a few fixed paths). Everything that was not there before the start is undone by one
//! generated script (`node-cleanup.sh`): when the [`Node`] is dropped (a passing or a panicking
//! test), and by a watchdog when the test process dies without dropping it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::control_plane::{ControlPlane, NODE_TOKEN, spawn_watched};

/// The pod sandbox image the node's containerd uses (imported, never pulled).
const PAUSE_IMAGE: &str = "docker.io/fortisync-e2e/pause:1";

/// Host paths kubelet and containerd create whatever their folders are.
const HOST_PATHS: [&str; 7] = [
    "/var/lib/kubelet",
    "/usr/libexec/kubernetes",
    "/var/log/containers",
    "/run/containerd",
    "/var/lib/cni",
    "/var/run/netns",
    "/opt/containerd",
];

/// Cgroups kubelet (`kubepods`) and containerd (`k8s.io`) create in every hierarchy.
const CGROUPS: [&str; 2] = ["kubepods", "k8s.io"];

/// A running node `127.0.0.1`, Ready; torn down when dropped.
pub struct Node {
    dir: PathBuf,
    socket: PathBuf,
    cleanup: PathBuf,
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The KUBE-* chains of `table` in `iptables`/`ip6tables` right now.
fn kube_chains(binary: &str, table: &str) -> Vec<String> {
    let out = Command::new(binary).args(["-t", table, "-S"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("-N KUBE-"))
        .map(|c| format!("KUBE-{c}"))
        .collect()
}

/// The cgroup hierarchies' mount points (v1 controllers and the unified one).
fn cgroup_roots() -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && (f[2] == "cgroup" || f[2] == "cgroup2")).then(|| f[1].to_string())
        })
        .collect()
}

impl Node {
    /// Starts containerd, kubelet, kube-scheduler and kube-controller-manager for `cp` and
    /// waits until the Node is Ready. Panics, naming what is missing, without root or the
    /// packages `scripts/test` installs.
    pub fn start(cp: &ControlPlane) -> Self {
        assert_eq!(
            run_ok("id", &["-u"]).trim(),
            "0",
            "the real-node tests need root (kubelet, runc)"
        );
        for binary in ["/usr/bin/containerd", "/usr/sbin/runc", "/usr/bin/ctr"] {
            assert!(
                Path::new(binary).exists(),
                "{binary} missing: scripts/test installs containerd, runc, containernetworking-plugins, iptables, conntrack"
            );
        }
        // Not under the control plane's folder: its watchdog removes that folder when the test
        // process dies, which would take this teardown script with it (and fail on the
        // node's mounts).
        let dir = std::env::temp_dir().join(format!("fortisync-node-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("cni")).expect("node dir");
        let socket = dir.join("containerd/containerd.sock");
        let node = Node {
            cleanup: dir.join("node-cleanup.sh"),
            socket,
            dir,
        };
        node.write_cleanup();
        node.watch_for_test_exit();
        node.start_containerd(cp);
        node.import_pause(cp);
        node.start_kubelet(cp);
        let admin = cp.kubeconfig();
        let admin = admin.to_str().expect("path");
        let kcm_args = vec![
            format!("--kubeconfig={admin}"),
            "--leader-elect=false".to_string(),
            "--secure-port=0".to_string(),
            format!("--root-ca-file={}", cp.dir.join("ca.crt").display()),
            format!(
                "--service-account-private-key-file={}",
                cp.dir.join("sa.key").display()
            ),
            "--use-service-account-credentials=false".to_string(),
        ];
        spawn_watched(
            &cp.bin.join("kube-controller-manager"),
            &kcm_args,
            &node.dir.join("kube-controller-manager.log"),
            None,
        )
        .expect("start kube-controller-manager");
        let scheduler_args = vec![
            format!("--kubeconfig={admin}"),
            "--leader-elect=false".to_string(),
            "--secure-port=0".to_string(),
        ];
        spawn_watched(
            &cp.bin.join("kube-scheduler"),
            &scheduler_args,
            &node.dir.join("kube-scheduler.log"),
            None,
        )
        .expect("start kube-scheduler");
        node.wait_ready(cp);
        node
    }

    /// Imports a docker-save style image tar into the node's containerd (namespace k8s.io,
    /// where the kubelet's images live).
    pub fn import(&self, image: &Path) {
        self.ctr(&["images", "import", image.to_str().expect("path")]);
    }

    /// Everything the containers of `namespace/pod` have logged, in the kubelet's CRI format
    /// (`<time> stdout F <line>` per line).
    pub fn pod_log(&self, namespace: &str, pod: &str) -> String {
        let prefix = format!("{namespace}_{pod}_");
        let Ok(dirs) = std::fs::read_dir(self.dir.join("pod-logs")) else {
            return String::new();
        };
        let mut text = String::new();
        for dir in dirs.flatten() {
            if !dir.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            for container in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                for file in std::fs::read_dir(container.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    text += &std::fs::read_to_string(file.path()).unwrap_or_default();
                }
            }
        }
        text
    }

    /// The tail of one of the node's logs (`kubelet`, `containerd`, ...), for failure messages.
    pub fn log_tail(&self, process: &str) -> String {
        let text =
            std::fs::read_to_string(self.dir.join(format!("{process}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn ctr(&self, args: &[&str]) -> String {
        let address = format!("--address={}", self.socket.display());
        let mut all = vec![address.as_str(), "--namespace=k8s.io"];
        all.extend(args);
        run_ok("/usr/bin/ctr", &all)
    }

    /// The teardown, as a script so the watchdog can run it too: only what did not exist
    /// before the start is removed.
    fn write_cleanup(&self) {
        let dir = self.dir.display().to_string();
        let sock = self.socket.display().to_string();
        let mut iptables = String::new();
        for binary in ["iptables", "ip6tables"] {
            for table in ["filter", "nat", "mangle"] {
                let before = kube_chains(binary, table).join(" ");
                iptables += &format!("clean_chains {binary} {table} '{before}'\n");
            }
        }
        let mut cgroups = String::new();
        for root in cgroup_roots() {
            for name in CGROUPS {
                let path = format!("{root}/{name}");
                if !Path::new(&path).exists() {
                    cgroups += &format!("clean_cgroup '{path}'\n");
                }
            }
        }
        let paths: Vec<String> = HOST_PATHS
            .iter()
            .filter(|p| !Path::new(p).exists())
            .map(|p| format!("'{p}'"))
            .collect();
        let script = format!(
            r#"#!/usr/bin/env bash
# Tears the e2e node down (support/node.rs). Idempotent; run once the test is over.
dir='{dir}'
[[ -d $dir ]] || exit 0
# Bounded: after a crash containerd may be gone already, and ctr would wait for it.
ctr() {{ timeout 10 /usr/bin/ctr --address '{sock}' --namespace k8s.io --connect-timeout 2s "$@"; }}
stop() {{ # the process a watchdog recorded in $1.log.pid
  local pid; pid=$(cat "$dir/$1.log.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null
}}
for p in kubelet kube-scheduler kube-controller-manager; do stop $p; done
# Pod containers and sandboxes, while containerd still answers.
for t in $(ctr task ls -q 2>/dev/null); do ctr task kill -s SIGKILL "$t" 2>/dev/null; done
sleep 0.5
for t in $(ctr task ls -q 2>/dev/null); do ctr task rm -f "$t" 2>/dev/null; done
for c in $(ctr containers ls -q 2>/dev/null); do ctr containers rm "$c" 2>/dev/null; done
stop containerd
# Whatever is left in the pods' cgroups (containerd gone first), and this containerd's shims.
for root in {roots}; do
  for name in {cgroup_names}; do
    find "$root/$name" -name cgroup.procs 2>/dev/null | while read -r f; do
      for pid in $(cat "$f"); do kill -9 "$pid" 2>/dev/null; done
    done
  done
done
for p in /proc/[0-9]*; do
  {{ tr '\0' ' ' <"$p/cmdline" | grep -qF -- '-address {sock}'; }} 2>/dev/null && kill -9 "${{p#/proc/}}" 2>/dev/null
done
sleep 0.5
# Mounts under the node's folder (kubelet's bind mount of its root, projected-volume tmpfs,
# overlay root filesystems, sandbox shm), deepest first.
awk '{{print $5}}' /proc/self/mountinfo | grep -F "$dir" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
clean_chains() {{ # binary table 'chains that existed before'
  local bin=$1 table=$2 before=" $3 " chain rule
  for chain in $($bin -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-.*\)/\1/p'); do
    [[ $before == *" $chain "* ]] && continue
    $bin -t "$table" -S 2>/dev/null | grep -E -- "-j $chain( |$)" | sed 's/^-A /-D /' | while read -r rule; do
      eval "$bin -t $table $rule" 2>/dev/null
    done
    $bin -t "$table" -F "$chain" 2>/dev/null
    $bin -t "$table" -X "$chain" 2>/dev/null
  done
}}
{iptables}clean_cgroup() {{ find "$1" -depth -type d -exec rmdir {{}} \; 2>/dev/null; }}
{cgroups}for p in {paths}; do
  awk '{{print $5}}' /proc/self/mountinfo | grep -F "$p" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$p"
done
# The CNI bridge, had a non-hostNetwork pod been started.
ip link delete fse2e0 2>/dev/null
rm -rf "$dir"
"#,
            roots = cgroup_roots().join(" "),
            cgroup_names = CGROUPS.join(" "),
            paths = paths.join(" "),
        );
        write(&self.cleanup, &script);
    }

    /// Runs the teardown when this test process ends without dropping the node (a crash).
    // Never waited for: the watchdog must outlive this process to do its job.
    #[allow(clippy::zombie_processes)]
    fn watch_for_test_exit(&self) {
        let script = format!(
            "while kill -0 {} 2>/dev/null; do sleep 0.5; done; bash '{}'",
            std::process::id(),
            self.cleanup.display()
        );
        Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the node's watchdog");
    }

    fn start_containerd(&self, cp: &ControlPlane) {
        let d = self.dir.join("containerd");
        std::fs::create_dir_all(&d).expect("containerd dir");
        // restrict_oom_score_adj: this VM refuses even root lowering oom_score_adj, and without
        // it every sandbox fails ("can't get final child's PID from pipe: EOF").
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = self.socket.display(),
            cni = self.dir.join("cni").display(),
        );
        let config_file = d.join("config.toml");
        write(&config_file, &config);
        // The network must be configured for NetworkReady; hostNetwork pods never use it. An
        // isolated bridge: no gateway, no masquerade, nothing routed off the host.
        write(
            &self.dir.join("cni/10-e2e.conflist"),
            r#"{"cniVersion": "0.4.0", "name": "e2e", "plugins": [{"type": "bridge", "bridge": "fse2e0", "isGateway": false, "ipMasq": false, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]]}}]}"#,
        );
        let _ = cp;
        spawn_watched(
            Path::new("/usr/bin/containerd"),
            &[format!("--config={}", config_file.display())],
            &self.dir.join("containerd.log"),
            None,
        )
        .expect("start containerd");
        let started = Instant::now();
        loop {
            let address = format!("--address={}", self.socket.display());
            let ok = Command::new("/usr/bin/ctr")
                .args([address.as_str(), "version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "containerd did not answer in 30 s:\n{}",
                self.log_tail("containerd")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The sandbox image: the `pause` binary `scripts/control-plane --node` builds, as a
    /// docker-save tar.
    fn import_pause(&self, cp: &ControlPlane) {
        let tar = docker_archive(
            &self.dir.join("pause-image"),
            &cp.bin.join("pause"),
            "pause",
            "fortisync-e2e/pause:1",
        );
        self.import(&tar);
    }

    fn start_kubelet(&self, cp: &ControlPlane) {
        let ca = cp.dir.join("ca.crt");
        let kubeconfig = self.dir.join("kubelet.kubeconfig");
        write(
            &kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: node\n  user:\n    token: {NODE_TOKEN}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: node}}\ncurrent-context: e2e\n",
                cp.url,
                ca.display()
            ),
        );
        // failCgroupV1: false — 1.36 refuses this VM's cgroup v1 otherwise. Relaxed eviction
        // thresholds: a busy shared disk must not evict the test's pods.
        let config = format!(
            r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: {port}
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
readOnlyPort: 0
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://{sock}
imageServiceEndpoint: unix://{sock}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
authorization: {{mode: AlwaysAllow}}
evictionHard: {{memory.available: 1Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}}
podLogsDir: {logs}
"#,
            port = free_port(),
            healthz = free_port(),
            sock = self.socket.display(),
            logs = self.dir.join("pod-logs").display(),
        );
        let config_file = self.dir.join("kubelet.yaml");
        write(&config_file, &config);
        // An IP-shaped host name becomes the node's name and InternalIP (--node-ip refuses
        // loopback), so hostNetwork pods and their probes stay on 127.0.0.1.
        let args = vec![
            format!("--config={}", config_file.display()),
            format!("--kubeconfig={}", kubeconfig.display()),
            "--hostname-override=127.0.0.1".to_string(),
            format!("--root-dir={}", self.dir.join("kubelet").display()),
            format!("--cert-dir={}", self.dir.join("kubelet-pki").display()),
            "--v=1".to_string(),
        ];
        spawn_watched(
            &cp.bin.join("kubelet"),
            &args,
            &self.dir.join("kubelet.log"),
            None,
        )
        .expect("start kubelet");
    }

    fn wait_ready(&self, cp: &ControlPlane) {
        let started = Instant::now();
        loop {
            let out = cp.kubectl(&[
                "get",
                "node",
                "127.0.0.1",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            if String::from_utf8_lossy(&out.stdout).trim() == "True" {
                eprintln!("e2e: node 127.0.0.1 Ready in {:.1?}", started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "node not Ready in 90 s; kubelet log:\n{}",
                self.log_tail("kubelet")
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.cleanup).status();
    }
}

/// A docker-save style tar of one static `binary` at `/<name>` as the entrypoint, tagged `tag`.
fn docker_archive(dir: &Path, binary: &Path, name: &str, tag: &str) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root).expect("rootfs");
    std::fs::copy(binary, root.join(name)).expect("copy binary");
    let image = dir.join("image");
    std::fs::create_dir_all(&image).expect("image dir");
    let layer = dir.join("layer.tar");
    let tar = |from: &Path, to: &Path, entries: &[&str]| {
        let mut args = vec![
            "--create".to_string(),
            format!("--file={}", to.display()),
            format!("--directory={}", from.display()),
            "--sort=name".to_string(),
            "--mtime=@0".to_string(),
            "--owner=0".to_string(),
            "--group=0".to_string(),
            "--numeric-owner".to_string(),
        ];
        args.extend(entries.iter().map(|e| e.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok("tar", &refs);
    };
    tar(&root, &layer, &[name]);
    let hex = |bytes: &[u8]| format!("{:x}", Sha256::digest(bytes));
    let diff_id = hex(&std::fs::read(&layer).expect("layer"));
    std::fs::create_dir_all(image.join(&diff_id)).expect("layer dir");
    std::fs::rename(&layer, image.join(&diff_id).join("layer.tar")).expect("move layer");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Entrypoint":["/{name}"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{diff_id}"]}}}}"#
    );
    let config_id = hex(config.as_bytes());
    write(&image.join(format!("{config_id}.json")), &config);
    write(
        &image.join("manifest.json"),
        &format!(
            r#"[{{"Config":"{config_id}.json","RepoTags":["{tag}"],"Layers":["{diff_id}/layer.tar"]}}]"#
        ),
    );
    let out = dir.join("image.tar");
    let config_file = format!("{config_id}.json");
    tar(&image, &out, &[&config_file, &diff_id, "manifest.json"]);
    out
}
