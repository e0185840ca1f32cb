//! Wasted bytes, computed honestly from an image's layers (`docker save` format): the bytes
//! that earlier layers carry for files a later layer replaces or deletes. They are in the
//! image (and its pulls) but not in the filesystem a container sees.
//!
//! # How the layers are applied
//!
//! The layers are applied oldest first as the OCI image spec says (image-spec `layer.md`,
//! sections "Applying Changesets", "Changeset over existing files", "Whiteouts", "Opaque
//! Whiteout" and "Hardlinks"), on a model filesystem that keeps, per path, its type and (for
//! regular files) the data it shows:
//!
//! * **Whiteouts apply to lower layers only** ("Whiteout files MUST only apply to resources in
//!   lower/parent layers"). All of a layer's whiteouts are applied before any of its other
//!   entries, wherever they sit in the tar ("regardless of the ordering in which the whiteout
//!   file was encountered"): `DIR/.wh.NAME` removes `DIR/NAME` and everything under it;
//!   `DIR/.wh..wh..opq` (opaque whiteout) removes every child of `DIR` (all descendants) but not
//!   `DIR` itself, nor what the same layer puts in it. The markers themselves are hidden.
//! * **An entry over an existing path** ("Changeset over existing files"): if both are
//!   directories only the attributes change (a `chmod` of a directory keeps its children);
//!   otherwise the existing path is removed, a directory with everything under it, and the
//!   entry recreated. So a type change needs no whiteout: a file replaced by a symlink or a
//!   directory, or a directory replaced by a file or a symlink, hides the old data. A parent
//!   path that is not a directory is replaced by one (what extracting the layer does).
//! * **Hard links** (tar type `1`, "Hardlinks") name another entry: the new path shows the same
//!   data, not a copy. Data is wasted only when no path shows it any more: deleting one name of
//!   a file that another name still reaches wastes nothing.
//!
//! `total` is every regular file's data in every layer; `wasted` is the data of those copies
//! no path of the final filesystem reaches (each counted once, however many links it had).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};

use serde::Serialize;

/// One file that costs more than it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WastedFile {
    pub path: String,
    /// Bytes of copies that later layers replaced or deleted.
    pub wasted: u64,
    /// How many layers carry this path.
    pub copies: u32,
}

/// The analysis of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waste {
    /// Bytes of all regular files in all layers.
    pub total: u64,
    pub wasted: u64,
    /// Share of the bytes a container sees: 1 - wasted / total.
    pub efficiency: f64,
    /// The worst files, biggest waste first.
    pub files: Vec<WastedFile>,
}

#[derive(serde::Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// What one layer tar entry is, as far as applying it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryKind {
    Dir,
    /// A regular file carrying `size` bytes of data.
    File(u64),
    /// A hard link to another path (normalised).
    HardLink(String),
    /// A whiteout of the named child of the entry's directory.
    Whiteout(String),
    /// An opaque whiteout of the entry's directory.
    Opaque,
    /// Symlinks, devices, FIFOs: no data.
    Other,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    kind: EntryKind,
}

/// Analyse a `docker save` archive (seekable: the manifest is usually at its end).
/// Errors: the archive is not a `docker save` archive (no manifest, a layer missing).
pub fn analyse<R: Read + Seek>(archive: R) -> Result<Waste, ArchiveError> {
    analyse_text(archive).map_err(ArchiveError)
}

/// A `docker save` archive that cannot be read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArchiveError(pub String);

fn analyse_text<R: Read + Seek>(mut archive: R) -> Result<Waste, String> {
    let manifest = read_manifest(&mut archive)?;
    let order = &manifest.first().ok_or("empty manifest.json")?.layers;
    // Second pass: each layer's entries (the archive may hold them in any order).
    let mut layers: HashMap<String, Vec<Entry>> = HashMap::new();
    archive.rewind().map_err(|e| e.to_string())?;
    let mut ar = tar::Archive::new(&mut archive);
    for e in ar.entries().map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let name = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        if !order.contains(&name) || layers.contains_key(&name) {
            continue;
        }
        let entries = read_layer(e).map_err(|e| format!("{name}: {e}"))?;
        layers.insert(name, entries);
    }
    let mut fs = Fs::default();
    for name in order {
        // A layer listed twice (the same diff applied again) is applied again.
        if let Some(entries) = layers.get(name) {
            fs.apply(entries);
        }
    }
    Ok(fs.waste())
}

/// The content of each layer of a `docker save` archive as a digest that ignores time stamps
/// (`sha256:` over each entry's path, type, mode, owner, link target and data, in tar order),
/// oldest layer first. Two builds of the same step that wrote the same files get the same
/// fingerprint, although their layer digests differ (every file's mtime is in the tar).
pub fn layer_fingerprints<R: Read + Seek>(mut archive: R) -> Result<Vec<String>, String> {
    use sha2::{Digest, Sha256};
    let manifest = read_manifest(&mut archive)?;
    let order = &manifest.first().ok_or("empty manifest.json")?.layers;
    let mut found: HashMap<String, String> = HashMap::new();
    archive.rewind().map_err(|e| e.to_string())?;
    let mut ar = tar::Archive::new(&mut archive);
    for e in ar.entries().map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let name = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        if !order.contains(&name) || found.contains_key(&name) {
            continue;
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        for f in tar::Archive::new(e)
            .entries()
            .map_err(|e| format!("{name}: {e}"))?
        {
            let mut f = f.map_err(|e| format!("{name}: {e}"))?;
            let path = f.path().map_err(|e| e.to_string())?.into_owned();
            let link = f.link_name().ok().flatten().map(|l| l.into_owned());
            let hd = f.header();
            let meta = format!(
                "{}\0{}\0{:o}\0{}\0{}\0{}\0{}\0",
                path.display(),
                hd.entry_type().as_byte(),
                hd.mode().unwrap_or(0),
                hd.uid().unwrap_or(0),
                hd.gid().unwrap_or(0),
                f.size(),
                link.map(|l| l.display().to_string()).unwrap_or_default()
            );
            h.update(meta.as_bytes());
            loop {
                let n = f.read(&mut buf).map_err(|e| format!("{name}: {e}"))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        found.insert(name, format!("sha256:{:x}", h.finalize()));
    }
    order
        .iter()
        .map(|n| {
            found
                .get(n)
                .cloned()
                .ok_or_else(|| format!("layer {n} is missing from the archive"))
        })
        .collect()
}

/// The archive's `manifest.json`.
fn read_manifest<R: Read + Seek>(mut archive: R) -> Result<Vec<ManifestEntry>, String> {
    archive.rewind().map_err(|e| e.to_string())?;
    let manifest: Vec<ManifestEntry> = {
        let mut ar = tar::Archive::new(&mut archive);
        let mut found = None;
        for e in ar.entries().map_err(|e| e.to_string())? {
            let mut e = e.map_err(|e| e.to_string())?;
            if e.path()
                .map(|p| p.to_string_lossy() == "manifest.json")
                .unwrap_or(false)
            {
                let mut s = String::new();
                e.read_to_string(&mut s).map_err(|e| e.to_string())?;
                found = Some(serde_json::from_str(&s).map_err(|e| format!("manifest.json: {e}"))?);
                break;
            }
        }
        found.ok_or("no manifest.json in the image archive")?
    };
    Ok(manifest)
}

/// The entries of one layer tar, in tar order.
fn read_layer<R: Read>(layer: R) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for f in tar::Archive::new(layer)
        .entries()
        .map_err(|e| e.to_string())?
    {
        let f = f.map_err(|e| e.to_string())?;
        let raw = f.path().map_err(|e| e.to_string())?;
        let Some(path) = normalise(&raw.to_string_lossy()) else {
            continue;
        };
        use tar::EntryType as T;
        let kind = match f.header().entry_type() {
            T::Directory => EntryKind::Dir,
            T::Regular | T::Continuous | T::GNUSparse => EntryKind::File(f.size()),
            T::Link => match f
                .link_name()
                .ok()
                .flatten()
                .and_then(|l| normalise(&l.to_string_lossy()))
            {
                Some(target) => EntryKind::HardLink(target),
                None => EntryKind::Other,
            },
            T::Symlink | T::Char | T::Block | T::Fifo => EntryKind::Other,
            // Global PAX headers and the like describe no file.
            _ => continue,
        };
        let (dir, base) = split(&path);
        let kind = match base.strip_prefix(".wh.") {
            Some(".wh..opq") => EntryKind::Opaque,
            Some(hidden) if !hidden.is_empty() => EntryKind::Whiteout(join(dir, hidden)),
            _ => kind,
        };
        entries.push(Entry { path, kind });
    }
    Ok(entries)
}

/// A tar path as a relative path without `./`, empty or `.` components and trailing `/`;
/// None for the root itself and for paths that climb out of it (`..`).
fn normalise(raw: &str) -> Option<String> {
    let mut parts = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `("a/b", "c")` for `a/b/c`, `("", "c")` for `c`.
fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((d, b)) => (d, b),
        None => ("", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// A path in the model filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    /// A regular file showing the data of `Fs::data[i]`.
    File(usize),
    Other,
}

/// One copy of a file's data, as one layer carries it.
#[derive(Debug)]
struct Data {
    size: u64,
    /// The path it was written at.
    path: String,
    /// Paths of the current filesystem that show it.
    links: u32,
}

/// The filesystem the layers applied so far make.
#[derive(Default)]
struct Fs {
    nodes: BTreeMap<String, Node>,
    data: Vec<Data>,
    /// Regular-file entries per path, over all layers.
    copies: HashMap<String, u32>,
}

impl Fs {
    /// Apply one layer's changeset (see the module documentation).
    fn apply(&mut self, entries: &[Entry]) {
        // Whiteouts first: they hide what the lower layers made, never this layer's entries.
        for e in entries {
            match &e.kind {
                EntryKind::Whiteout(target) => self.remove(target),
                EntryKind::Opaque => self.remove_below(split(&e.path).0),
                _ => {}
            }
        }
        for e in entries {
            let node = match &e.kind {
                EntryKind::Whiteout(_) | EntryKind::Opaque => continue,
                EntryKind::Dir => Node::Dir,
                EntryKind::Other => Node::Other,
                EntryKind::File(size) => {
                    *self.copies.entry(e.path.clone()).or_default() += 1;
                    self.data.push(Data {
                        size: *size,
                        path: e.path.clone(),
                        links: 0,
                    });
                    Node::File(self.data.len() - 1)
                }
                // A link to a directory or to nothing cannot be made; it shows no data.
                EntryKind::HardLink(target) => match self.nodes.get(target) {
                    Some(Node::File(i)) => Node::File(*i),
                    _ => Node::Other,
                },
            };
            self.put(&e.path, node);
        }
    }

    /// Make `path` show `node`: parents become directories; an existing directory stays when
    /// `node` is one too (attributes only), anything else there is removed first.
    fn put(&mut self, path: &str, node: Node) {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            match self.nodes.get(parent) {
                Some(Node::Dir) => {}
                Some(_) => {
                    self.remove(parent);
                    self.nodes.insert(parent.to_string(), Node::Dir);
                }
                None => {
                    self.nodes.insert(parent.to_string(), Node::Dir);
                }
            }
            end += i + 1;
        }
        match (self.nodes.get(path), node) {
            (Some(Node::Dir), Node::Dir) => return,
            (Some(Node::File(old)), Node::File(new)) if *old == new => return,
            (Some(_), _) => self.remove(path),
            (None, _) => {}
        }
        if let Node::File(i) = node {
            self.data[i].links += 1;
        }
        self.nodes.insert(path.to_string(), node);
    }

    /// Remove `path` and, if it is a directory, everything under it.
    fn remove(&mut self, path: &str) {
        if let Some(node) = self.nodes.remove(path) {
            self.unlink(node);
            if node == Node::Dir {
                self.remove_below(path);
            }
        }
    }

    /// Remove everything under directory `dir` (`""`: the root), not `dir` itself.
    fn remove_below(&mut self, dir: &str) {
        let gone: Vec<String> = if dir.is_empty() {
            self.nodes.keys().cloned().collect()
        } else {
            // Descendants sort between `dir/` and `dir0` ('0' follows '/').
            self.nodes
                .range(format!("{dir}/")..format!("{dir}0"))
                .map(|(k, _)| k.clone())
                .collect()
        };
        for p in gone {
            if let Some(node) = self.nodes.remove(&p) {
                self.unlink(node);
            }
        }
    }

    fn unlink(&mut self, node: Node) {
        if let Node::File(i) = node {
            self.data[i].links -= 1;
        }
    }

    /// The data no path shows any more is wasted.
    fn waste(self) -> Waste {
        let total: u64 = self.data.iter().map(|d| d.size).sum();
        let mut by_path: HashMap<&str, u64> = HashMap::new();
        for d in self.data.iter().filter(|d| d.links == 0 && d.size > 0) {
            *by_path.entry(d.path.as_str()).or_default() += d.size;
        }
        let wasted: u64 = by_path.values().sum();
        let mut files: Vec<WastedFile> = by_path
            .into_iter()
            .map(|(path, wasted)| WastedFile {
                path: path.to_string(),
                wasted,
                copies: self.copies.get(path).copied().unwrap_or(1),
            })
            .collect();
        files.sort_by(|a, b| b.wasted.cmp(&a.wasted).then_with(|| a.path.cmp(&b.path)));
        files.truncate(20);
        let efficiency = if total == 0 {
            1.0
        } else {
            1.0 - wasted as f64 / total as f64
        };
        Waste {
            total,
            wasted,
            efficiency,
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer entry for the tests: `name/` a directory, `name -> target` a symlink,
    /// `name => target` a hard link, `name` with a size a regular file.
    enum E<'a> {
        F(&'a str, usize),
        D(&'a str),
        L(&'a str, &'a str),
        H(&'a str, &'a str),
    }
    use E::*;

    fn layer(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match e {
                F(p, n) => {
                    h.set_size(*n as u64);
                    // `set_path` refuses absolute paths; some tools write them anyway.
                    let name = &mut h.as_old_mut().name;
                    name[..p.len()].copy_from_slice(p.as_bytes());
                    h.set_cksum();
                    b.append(&h, &vec![0u8; *n][..]).unwrap();
                }
                D(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    h.set_cksum();
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                L(p, t) | H(p, t) => {
                    h.set_entry_type(if matches!(e, L(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn image(layers: &[Vec<u8>]) -> Waste {
        let mut outer = tar::Builder::new(Vec::new());
        let names: Vec<String> = (1..=layers.len())
            .map(|i| format!("{i}/layer.tar"))
            .collect();
        // Layers stored newest first: the manifest, not the archive, gives the order.
        for (name, data) in names.iter().zip(layers).rev() {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            outer.append_data(&mut h, name, &data[..]).unwrap();
        }
        let manifest =
            serde_json::json!([{"Config": "c.json", "RepoTags": ["x:y"], "Layers": names}])
                .to_string();
        let mut h = tar::Header::new_gnu();
        h.set_size(manifest.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        outer
            .append_data(&mut h, "manifest.json", manifest.as_bytes())
            .unwrap();
        analyse(std::io::Cursor::new(outer.into_inner().unwrap())).unwrap()
    }

    fn wasted_paths(w: &Waste) -> Vec<(&str, u64)> {
        w.files
            .iter()
            .map(|f| (f.path.as_str(), f.wasted))
            .collect()
    }

    #[test]
    fn replaced_and_deleted_files_are_wasted() {
        let l1 = layer(&[
            F("usr/bin/tool", 1000),
            F("tmp/junk", 5000),
            F("cache/a", 10),
            F("cache/b", 20),
        ]);
        let l2 = layer(&[F("usr/bin/tool", 1200), F("tmp/.wh.junk", 0)]);
        let l3 = layer(&[F("cache/.wh..wh..opq", 0), F("cache/c", 7)]);
        let w = image(&[l1, l2, l3]);
        assert_eq!(w.total, 1000 + 5000 + 10 + 20 + 1200 + 7);
        assert_eq!(w.wasted, 1000 + 5000 + 30);
        assert_eq!(
            w.files[0],
            WastedFile {
                path: "tmp/junk".into(),
                wasted: 5000,
                copies: 1
            }
        );
        assert_eq!(w.files[1].copies, 2, "usr/bin/tool is in two layers");
    }

    /// Field case F1: a file deleted while a hard link still shows its data wastes nothing.
    #[test]
    fn a_file_still_reachable_through_a_hard_link_is_not_waste() {
        let n = 5 * 1024 * 1024;
        let l1 = layer(&[F("keep.bin", n), H("keep.link", "keep.bin")]);
        let l2 = layer(&[F(".wh.keep.bin", 0)]);
        let w = image(&[l1.clone(), l2.clone()]);
        assert_eq!((w.total, w.wasted, w.efficiency), (n as u64, 0, 1.0));
        assert!(w.files.is_empty(), "{w:?}");
        // Both names gone (in either order, in one layer or two): now it is waste, once.
        let l3 = layer(&[F(".wh.keep.link", 0)]);
        let w = image(&[l1.clone(), l2, l3]);
        assert_eq!(wasted_paths(&w), [("keep.bin", n as u64)]);
        // A link in a later layer to a lower file keeps it too; so does a rename done by
        // link + delete (what `mv` across layers looks like with a hard link).
        let w = image(&[
            layer(&[F("a", 100)]),
            layer(&[H("b", "a")]),
            layer(&[F(".wh.a", 0)]),
        ]);
        assert_eq!(w.wasted, 0, "{w:?}");
        // The link replaced by new data: the old data is still shown by the other name.
        let w = image(&[l1, layer(&[F("keep.link", 10)])]);
        assert_eq!(w.wasted, 0, "{w:?}");
    }

    /// Field case F2: a type change needs no whiteout to hide the old data.
    #[test]
    fn a_file_replaced_by_a_symlink_or_a_directory_is_waste() {
        let n = 5 * 1024 * 1024;
        let l1 = layer(&[F("payload.bin", n), F("dirpayload.bin", n)]);
        // overlay2 writes the new entries, maybe an opaque marker inside the new directory.
        let l2 = layer(&[
            L("payload.bin", "/bin/busybox"),
            D("dirpayload.bin/"),
            F("dirpayload.bin/.wh..wh..opq", 0),
            F("dirpayload.bin/note", 5),
        ]);
        let w = image(&[l1, l2]);
        assert_eq!(w.wasted, 2 * n as u64);
        assert_eq!(
            wasted_paths(&w),
            [("dirpayload.bin", n as u64), ("payload.bin", n as u64)]
        );
    }

    #[test]
    fn a_directory_replaced_by_a_file_or_symlink_takes_its_whole_tree() {
        let l1 = layer(&[
            D("cache/"),
            F("cache/a", 10),
            D("cache/sub/"),
            F("cache/sub/b", 20),
            F("cachefile", 1),
        ]);
        let w = image(&[l1.clone(), layer(&[L("cache", "/tmp")])]);
        assert_eq!(w.wasted, 30, "{w:?}");
        let w = image(&[l1.clone(), layer(&[F("cache", 3)])]);
        assert_eq!(w.wasted, 30);
        // And back: a file replaced by a directory again.
        let w = image(&[l1, layer(&[F("cache", 3)]), layer(&[D("cache/")])]);
        assert_eq!(w.wasted, 33);
        assert_eq!(w.files[0].path, "cache/sub/b");
    }

    #[test]
    fn a_directory_entry_over_a_directory_keeps_its_children() {
        // `chmod 700 /srv` (or any change to the directory itself): only attributes change.
        let l1 = layer(&[D("srv/"), F("srv/data", 1000)]);
        let w = image(&[l1, layer(&[D("srv/")]), layer(&[D("srv")])]);
        assert_eq!((w.wasted, w.efficiency), (0, 1.0));
    }

    #[test]
    fn whiteouts_hide_lower_layers_only_wherever_they_sit_in_the_tar() {
        let l1 = layer(&[D("a/"), D("a/b/"), F("a/b/bar", 100), F("a/x", 10)]);
        // image-spec's own example: the opaque marker after the new entries is applied first.
        for l2 in [
            layer(&[D("a/"), F("a/.wh..wh..opq", 0), D("a/b/"), F("a/b/foo", 7)]),
            layer(&[D("a/"), D("a/b/"), F("a/b/foo", 7), F("a/.wh..wh..opq", 0)]),
        ] {
            let w = image(&[l1.clone(), l2]);
            assert_eq!((w.total, w.wasted), (117, 110), "{w:?}");
        }
        // A whiteout and a new file of the same name in one layer: the new file stays.
        for l2 in [
            layer(&[F("a/x", 4), F("a/.wh.x", 0)]),
            layer(&[F("a/.wh.x", 0), F("a/x", 4)]),
        ] {
            let w = image(&[l1.clone(), l2]);
            assert_eq!((w.total, w.wasted), (114, 10), "{w:?}");
        }
        // A whiteout of a directory hides its tree; one of a missing path hides nothing.
        let w = image(&[l1.clone(), layer(&[F(".wh.a", 0), F(".wh.nothing", 0)])]);
        assert_eq!(w.wasted, 110);
        // An opaque marker at the root hides every lower path.
        let w = image(&[l1, layer(&[F(".wh..wh..opq", 0), F("new", 1)])]);
        assert_eq!(w.wasted, 110);
    }

    #[test]
    fn fingerprints_ignore_time_stamps_only() {
        let at = |mtime: u64, data: &[u8]| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, "stamp", data).unwrap();
            b.into_inner().unwrap()
        };
        let fp = |layers: &[Vec<u8>]| {
            let mut outer = tar::Builder::new(Vec::new());
            let names: Vec<String> = (0..layers.len())
                .map(|i| format!("{i}/layer.tar"))
                .collect();
            for (name, data) in names.iter().zip(layers) {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_cksum();
                outer.append_data(&mut h, name, &data[..]).unwrap();
            }
            let m = serde_json::json!([{ "Layers": names }]).to_string();
            let mut h = tar::Header::new_gnu();
            h.set_size(m.len() as u64);
            h.set_cksum();
            outer
                .append_data(&mut h, "manifest.json", m.as_bytes())
                .unwrap();
            layer_fingerprints(std::io::Cursor::new(outer.into_inner().unwrap())).unwrap()
        };
        let a = fp(&[at(1, b"2026-11-29"), at(1, b"same")]);
        let b = fp(&[at(99, b"2026-11-30"), at(99, b"same")]);
        assert_ne!(a[0], b[0], "same size, other content");
        assert_eq!(a[1], b[1], "rebuilt, same content");
    }

    #[test]
    fn paths_are_normalised() {
        let w = image(&[
            layer(&[D("./"), F("./etc/conf", 9)]),
            layer(&[F("/etc/.wh.conf", 0)]),
        ]);
        assert_eq!(wasted_paths(&w), [("etc/conf", 9)]);
    }
}
