//! Property test of `sizes --wasted` (`imagegrid::sizes::wasted::analyse`): random build steps
//! (write, symlink, mkdir, chmod, hard link, rm -rf, rm -rf + mkdir) are run on a model
//! filesystem; each step's change is written as a layer tar the way an engine writes one
//! (new and changed entries, whiteouts for what is gone, opaque markers for recreated
//! directories, hard links as type `1` entries, copy-up of every name of a re-linked file,
//! markers anywhere in the tar, type changes with or without a whiteout). The analysis of the
//! resulting `docker save` archive must equal what a separate, deliberately naive applier of
//! the OCI rules (image-spec layer.md, "Applying Changesets", "Whiteouts") computes, and that
//! applier must rebuild exactly the filesystem the steps made. No engine needed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use imagegrid::sizes::wasted::{analyse, WastedFile};
use proptest::prelude::*;

/// Paths the steps work on: short names, so that files, directories and links collide.
const PATHS: &[&str] = &[
    "a", "b", "c", "a/x", "a/y", "b/x", "a/x/p", "a/x/q", "a/y/p", "b/x/p",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File(u32),
    Sym(u32),
}

/// One build step on the model filesystem.
#[derive(Debug, Clone)]
enum Op {
    Write(usize, u16),
    Symlink(usize),
    Mkdir(usize),
    Chmod(usize),
    Link(usize, usize),
    Remove(usize),
    Recreate(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    prop_oneof![
        3 => (p.clone(), 0u16..2000).prop_map(|(p, n)| Op::Write(p, n)),
        1 => p.clone().prop_map(Op::Symlink),
        2 => p.clone().prop_map(Op::Mkdir),
        1 => p.clone().prop_map(Op::Chmod),
        2 => (p.clone(), p.clone()).prop_map(|(a, b)| Op::Link(a, b)),
        2 => p.clone().prop_map(Op::Remove),
        1 => p.prop_map(Op::Recreate),
    ]
}

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(d, _)| d)
}

fn under(p: &str, dir: &str) -> bool {
    dir.is_empty() || p.starts_with(&format!("{dir}/"))
}

/// The filesystem a container of the image so far sees (the truth the layers must encode).
#[derive(Default, Clone)]
struct Model {
    nodes: BTreeMap<String, Node>,
    sizes: HashMap<u32, u64>,
    next: u32,
}

impl Model {
    fn fresh(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    fn rm_rf(&mut self, p: &str) {
        self.nodes.retain(|k, _| k != p && !under(k, p));
    }

    /// `mkdir -p` of the parents; false (the shell step fails) if one is not a directory.
    fn parents(&mut self, p: &str) -> bool {
        let mut d = parent(p);
        let mut missing = vec![];
        while !d.is_empty() {
            match self.nodes.get(d) {
                Some(Node::Dir(_)) => {}
                Some(_) => return false,
                None => missing.push(d.to_string()),
            }
            d = parent(d);
        }
        for d in missing {
            self.nodes.insert(d, Node::Dir(0));
        }
        true
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Write(i, size) => {
                let p = PATHS[i];
                if self.parents(p) {
                    self.rm_rf(p);
                    let ino = self.fresh();
                    self.sizes.insert(ino, size as u64);
                    self.nodes.insert(p.into(), Node::File(ino));
                }
            }
            Op::Symlink(i) => {
                let p = PATHS[i];
                if self.parents(p) {
                    self.rm_rf(p);
                    let id = self.fresh();
                    self.nodes.insert(p.into(), Node::Sym(id));
                }
            }
            Op::Mkdir(i) => {
                let p = PATHS[i];
                if self.parents(p) && !matches!(self.nodes.get(p), Some(Node::Dir(_))) {
                    self.rm_rf(p);
                    self.nodes.insert(p.into(), Node::Dir(0));
                }
            }
            Op::Chmod(i) => {
                if let Some(Node::Dir(m)) = self.nodes.get_mut(PATHS[i]) {
                    *m += 1;
                }
            }
            Op::Link(s, d) => {
                let (src, dst) = (PATHS[s], PATHS[d]);
                if let Some(&Node::File(ino)) = self.nodes.get(src) {
                    if src != dst && !under(src, dst) && self.parents(dst) {
                        self.rm_rf(dst);
                        self.nodes.insert(dst.into(), Node::File(ino));
                    }
                }
            }
            Op::Remove(i) => self.rm_rf(PATHS[i]),
            Op::Recreate(i) => {
                let p = PATHS[i];
                if matches!(self.nodes.get(p), Some(Node::Dir(_))) {
                    self.rm_rf(p);
                    self.nodes.insert(p.into(), Node::Dir(0));
                }
            }
        }
    }
}

/// One entry of a layer as the test writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    /// Data entry number `id` (unique over the image), `size` bytes.
    File {
        id: u32,
        size: u64,
    },
    Link(String),
    Sym,
    Whiteout,
    Opaque,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    kind: Kind,
}

/// A small deterministic generator for the choices an engine makes (order, marker style).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// The layer an engine writes for the change from `before` to `after`. `data` maps each inode
/// to the data entry that shows it now, and is updated.
fn diff(
    before: &Model,
    after: &Model,
    data: &mut HashMap<u32, (u32, u64)>,
    next_id: &mut u32,
    rng: &mut Rng,
) -> Vec<Entry> {
    let changed =
        |p: &str| after.nodes.contains_key(p) && after.nodes.get(p) != before.nodes.get(p);
    // A file that gets a new name is copied up: all of its names are in the layer.
    let touched: BTreeSet<u32> = after
        .nodes
        .iter()
        .filter(|(p, _)| changed(p))
        .filter_map(|(_, n)| match n {
            Node::File(i) => Some(*i),
            _ => None,
        })
        .collect();
    let mut emit: BTreeSet<String> = after
        .nodes
        .iter()
        .filter(|(p, n)| changed(p) || matches!(n, Node::File(i) if touched.contains(i)))
        .map(|(p, _)| p.clone())
        .collect();
    let mut markers: Vec<Entry> = vec![];
    let dirs: Vec<String> = std::iter::once(String::new())
        .chain(
            after
                .nodes
                .iter()
                .filter(|(_, n)| matches!(n, Node::Dir(_)))
                .map(|(p, _)| p.clone()),
        )
        .collect();
    for d in &dirs {
        let was_dir = d.is_empty() || matches!(before.nodes.get(d), Some(Node::Dir(_)));
        let gone: Vec<&String> = before
            .nodes
            .keys()
            .filter(|p| parent(p) == d && !after.nodes.contains_key(*p))
            .collect();
        let all_new = after
            .nodes
            .keys()
            .filter(|p| under(p, d))
            .all(|p| emit.contains(p));
        // Opaque only where the layer holds the directory's whole new content (a directory
        // recreated, or new), as overlayfs does; else one whiteout per child gone.
        if all_new && (!gone.is_empty() || !was_dir) && rng.coin() {
            let marker = if d.is_empty() {
                ".wh..wh..opq".to_string()
            } else {
                format!("{d}/.wh..wh..opq")
            };
            markers.push(Entry {
                path: marker,
                kind: Kind::Opaque,
            });
        } else if was_dir {
            for g in gone {
                let (dir, base) = g.rsplit_once('/').unwrap_or(("", g));
                let path = if dir.is_empty() {
                    format!(".wh.{base}")
                } else {
                    format!("{dir}/.wh.{base}")
                };
                markers.push(Entry {
                    path,
                    kind: Kind::Whiteout,
                });
            }
        }
    }
    // A type change needs no whiteout; some tools write one anyway.
    for (p, n) in &after.nodes {
        if let Some(old) = before.nodes.get(p) {
            let type_changed = std::mem::discriminant(old) != std::mem::discriminant(n);
            if type_changed && rng.coin() {
                let (dir, base) = p.rsplit_once('/').unwrap_or(("", p));
                markers.push(Entry {
                    path: if dir.is_empty() {
                        format!(".wh.{base}")
                    } else {
                        format!("{dir}/.wh.{base}")
                    },
                    kind: Kind::Whiteout,
                });
            }
        }
    }
    // Parent directories come along (or not).
    for p in emit.clone() {
        let mut d = parent(&p);
        while !d.is_empty() {
            if rng.coin() {
                emit.insert(d.to_string());
            }
            d = parent(d);
        }
    }
    let mut order: Vec<String> = emit.into_iter().collect();
    rng.shuffle(&mut order);
    // Engines walk the tree: a directory before what is in it.
    order.sort_by_key(|p| p.matches('/').count());
    let mut entries = vec![];
    let mut first_name: HashMap<u32, String> = HashMap::new();
    for p in order {
        let kind = match after.nodes[&p] {
            Node::Dir(_) => Kind::Dir,
            Node::Sym(_) => Kind::Sym,
            Node::File(ino) => match first_name.get(&ino) {
                Some(t) => Kind::Link(t.clone()),
                None => {
                    first_name.insert(ino, p.clone());
                    *next_id += 1;
                    let size = after.sizes[&ino];
                    data.insert(ino, (*next_id, size));
                    Kind::File { id: *next_id, size }
                }
            },
        };
        entries.push(Entry { path: p, kind });
    }
    // Markers anywhere in the tar.
    for m in markers {
        let at = (rng.next() % (entries.len() as u64 + 1)) as usize;
        entries.insert(at, m);
    }
    entries
}

/// The reference: the OCI rules applied as literally and naively as possible, on a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RNode {
    Dir,
    File(u32),
    Other,
}

fn reference(layers: &[Vec<Entry>]) -> (BTreeMap<String, RNode>, u64, u64, Vec<WastedFile>) {
    let mut fs: Vec<(String, RNode)> = vec![];
    let mut sizes: HashMap<u32, (String, u64)> = HashMap::new();
    let mut copies: HashMap<String, u32> = HashMap::new();
    let drop_tree = |fs: &mut Vec<(String, RNode)>, p: &str| {
        fs.retain(|(k, _)| k != p && !under(k, p));
    };
    for layer in layers {
        // "Whiteout files MUST only apply to resources in lower/parent layers", whatever
        // their place in the tar: apply them all first.
        for e in layer {
            let dir = parent(&e.path).to_string();
            let base = e.path.rsplit('/').next().unwrap();
            match e.kind {
                Kind::Opaque => fs.retain(|(k, _)| !under(k, &dir)),
                Kind::Whiteout => {
                    let hidden = &base[".wh.".len()..];
                    let target = if dir.is_empty() {
                        hidden.to_string()
                    } else {
                        format!("{dir}/{hidden}")
                    };
                    drop_tree(&mut fs, &target);
                }
                _ => {}
            }
        }
        for e in layer {
            let node = match &e.kind {
                Kind::Whiteout | Kind::Opaque => continue,
                Kind::Dir => RNode::Dir,
                Kind::Sym => RNode::Other,
                Kind::File { id, size } => {
                    sizes.insert(*id, (e.path.clone(), *size));
                    *copies.entry(e.path.clone()).or_default() += 1;
                    RNode::File(*id)
                }
                Kind::Link(t) => fs
                    .iter()
                    .find(|(k, _)| k == t)
                    .map(|(_, n)| *n)
                    .expect("a hard link names an earlier entry"),
            };
            // "Changeset over existing files": two directories merge; else replace.
            let existing = fs.iter().find(|(k, _)| *k == e.path).map(|(_, n)| *n);
            if existing == Some(RNode::Dir) && node == RNode::Dir {
                continue;
            }
            drop_tree(&mut fs, &e.path);
            let mut d = parent(&e.path);
            while !d.is_empty() {
                assert_eq!(
                    fs.iter()
                        .find(|(k, _)| k == d)
                        .map(|(_, n)| *n)
                        .unwrap_or(RNode::Dir),
                    RNode::Dir,
                    "the steps never put a file under a file"
                );
                if !fs.iter().any(|(k, _)| k == d) {
                    fs.push((d.to_string(), RNode::Dir));
                }
                d = parent(d);
            }
            fs.push((e.path.clone(), node));
        }
    }
    let live: BTreeSet<u32> = fs
        .iter()
        .filter_map(|(_, n)| match n {
            RNode::File(i) => Some(*i),
            _ => None,
        })
        .collect();
    let total = sizes.values().map(|(_, s)| s).sum();
    let mut by_path: BTreeMap<String, u64> = BTreeMap::new();
    for (id, (path, size)) in &sizes {
        if !live.contains(id) && *size > 0 {
            *by_path.entry(path.clone()).or_default() += size;
        }
    }
    let wasted = by_path.values().sum();
    let mut files: Vec<WastedFile> = by_path
        .into_iter()
        .map(|(path, wasted)| WastedFile {
            copies: copies[&path],
            path,
            wasted,
        })
        .collect();
    files.sort_by(|a, b| b.wasted.cmp(&a.wasted).then_with(|| a.path.cmp(&b.path)));
    files.truncate(20);
    (fs.into_iter().collect(), total, wasted, files)
}

/// A layer tar, with the path spellings engines use (`./`, trailing `/` on directories).
fn layer_tar(entries: &[Entry], rng: &mut Rng) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(0);
        let mut path = if rng.coin() {
            format!("./{}", e.path)
        } else {
            e.path.clone()
        };
        match &e.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                if rng.coin() {
                    path.push('/');
                }
                h.set_cksum();
                b.append_data(&mut h, &path, &[][..]).unwrap();
            }
            Kind::File { size, .. } => {
                h.set_size(*size);
                h.set_cksum();
                b.append_data(&mut h, &path, &vec![7u8; *size as usize][..])
                    .unwrap();
            }
            Kind::Whiteout | Kind::Opaque => {
                h.set_cksum();
                b.append_data(&mut h, &path, &[][..]).unwrap();
            }
            Kind::Link(t) => {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, &path, t).unwrap();
            }
            Kind::Sym => {
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, &path, "/somewhere").unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn save_archive(layers: &[Vec<u8>]) -> Vec<u8> {
    let mut outer = tar::Builder::new(Vec::new());
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("blobs/sha256/{i:064}"))
        .collect();
    for (name, data) in names.iter().zip(layers) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        outer.append_data(&mut h, name, &data[..]).unwrap();
    }
    let manifest =
        serde_json::json!([{"Config": "c.json", "RepoTags": [], "Layers": names}]).to_string();
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    outer
        .append_data(&mut h, "manifest.json", manifest.as_bytes())
        .unwrap();
    outer.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn analysis_matches_a_reference_applier(
        steps in prop::collection::vec(prop::collection::vec(op(), 0..6), 1..7),
        seed in 1u64..,
    ) {
        let mut rng = Rng(seed);
        let mut model = Model::default();
        let mut data = HashMap::new();
        let mut next_id = 0;
        let mut layers = vec![];
        for ops in &steps {
            let before = model.clone();
            for op in ops {
                model.run(op);
            }
            layers.push(diff(&before, &model, &mut data, &mut next_id, &mut rng));
        }
        let (fs, total, wasted, files) = reference(&layers);
        // The reference rebuilds the filesystem the steps made.
        let truth: BTreeMap<String, RNode> = model
            .nodes
            .iter()
            .map(|(p, n)| {
                let r = match n {
                    Node::Dir(_) => RNode::Dir,
                    Node::Sym(_) => RNode::Other,
                    Node::File(ino) => RNode::File(data[ino].0),
                };
                (p.clone(), r)
            })
            .collect();
        prop_assert_eq!(&fs, &truth, "layers: {:#?}", layers);
        let tars: Vec<Vec<u8>> = layers.iter().map(|l| layer_tar(l, &mut rng)).collect();
        let w = analyse(std::io::Cursor::new(save_archive(&tars))).unwrap();
        prop_assert_eq!(w.total, total, "layers: {:#?}", layers);
        prop_assert_eq!(w.wasted, wasted, "layers: {:#?}", layers);
        prop_assert_eq!(&w.files, &files, "layers: {:#?}", layers);
        let live: u64 = model.nodes.values().filter_map(|n| match n {
            Node::File(i) => Some(*i),
            _ => None,
        }).collect::<BTreeSet<_>>().iter().map(|i| model.sizes[i]).sum();
        prop_assert_eq!(total - wasted, live, "what is not wasted is what a container sees");
    }
}
