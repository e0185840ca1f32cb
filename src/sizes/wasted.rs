//! Wasted bytes, computed honestly from an image's layers (`docker save` format): the bytes
//! that earlier layers carry for files a later layer replaces or deletes. They are in the
//! image (and its pulls) but not in the filesystem a container sees.

use std::collections::HashMap;
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

/// Analyse a `docker save` archive (seekable: the manifest is usually at its end).
pub fn analyse<R: Read + Seek>(mut archive: R) -> Result<Waste, String> {
    // First pass: the manifest (layer order).
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
    let order = &manifest.first().ok_or("empty manifest.json")?.layers;
    // Second pass: each layer's files, in manifest order.
    let mut layers: HashMap<String, Vec<(String, u64, bool)>> = HashMap::new();
    archive.rewind().map_err(|e| e.to_string())?;
    let mut ar = tar::Archive::new(&mut archive);
    for e in ar.entries().map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let name = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        if !order.contains(&name) {
            continue;
        }
        let mut files = Vec::new();
        for f in tar::Archive::new(e)
            .entries()
            .map_err(|e| format!("{name}: {e}"))?
        {
            let f = f.map_err(|e| format!("{name}: {e}"))?;
            let path = f
                .path()
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let regular = f.header().entry_type().is_file();
            files.push((path, f.header().size().unwrap_or(0), regular));
        }
        layers.insert(name, files);
    }
    // Walk the layers oldest first: a path seen again, or whited out, wastes its earlier copies.
    let mut live: HashMap<String, u64> = HashMap::new();
    let mut wasted: HashMap<String, (u64, u32)> = HashMap::new();
    let mut total = 0u64;
    let waste = |path: &str, bytes: u64, wasted: &mut HashMap<String, (u64, u32)>| {
        let w = wasted.entry(path.to_string()).or_insert((0, 1));
        w.0 += bytes;
        w.1 += 1;
    };
    for name in order {
        for (path, size, regular) in layers.get(name).map(|v| v.as_slice()).unwrap_or(&[]) {
            let base = path.rsplit('/').next().unwrap_or(path);
            if let Some(hidden) = base.strip_prefix(".wh.") {
                let dir = path[..path.len() - base.len()].to_string();
                if hidden == ".wh..opq" {
                    // Opaque directory: everything below it from earlier layers is gone.
                    let gone: Vec<String> = live
                        .keys()
                        .filter(|p| p.starts_with(&dir))
                        .cloned()
                        .collect();
                    for p in gone {
                        let b = live.remove(&p).unwrap_or(0);
                        waste(&p, b, &mut wasted);
                    }
                } else {
                    let target = format!("{dir}{hidden}");
                    let gone: Vec<String> = live
                        .keys()
                        .filter(|p| **p == target || p.starts_with(&format!("{target}/")))
                        .cloned()
                        .collect();
                    for p in gone {
                        let b = live.remove(&p).unwrap_or(0);
                        waste(&p, b, &mut wasted);
                    }
                }
                continue;
            }
            if !regular {
                continue;
            }
            total += size;
            if let Some(old) = live.insert(path.clone(), *size) {
                waste(path, old, &mut wasted);
            }
        }
    }
    let wasted_total: u64 = wasted.values().map(|w| w.0).sum();
    let mut files: Vec<WastedFile> = wasted
        .into_iter()
        .filter(|(_, (b, _))| *b > 0)
        .map(|(path, (wasted, copies))| WastedFile {
            path,
            wasted,
            copies,
        })
        .collect();
    files.sort_by(|a, b| b.wasted.cmp(&a.wasted).then_with(|| a.path.cmp(&b.path)));
    files.truncate(20);
    let efficiency = if total == 0 {
        1.0
    } else {
        1.0 - wasted_total as f64 / total as f64
    };
    Ok(Waste {
        total,
        wasted: wasted_total,
        efficiency,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(files: &[(&str, usize)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, n) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(*n as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, &vec![0u8; *n][..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn replaced_and_deleted_files_are_wasted() {
        let l1 = layer(&[
            ("usr/bin/tool", 1000),
            ("tmp/junk", 5000),
            ("cache/a", 10),
            ("cache/b", 20),
        ]);
        let l2 = layer(&[("usr/bin/tool", 1200), ("tmp/.wh.junk", 0)]);
        let l3 = layer(&[("cache/.wh..wh..opq", 0), ("cache/c", 7)]);
        let mut outer = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("1/layer.tar", &l1),
            ("2/layer.tar", &l2),
            ("3/layer.tar", &l3),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            outer.append_data(&mut h, name, &data[..]).unwrap();
        }
        let manifest = br#"[{"Config":"c.json","RepoTags":["x:y"],"Layers":["1/layer.tar","2/layer.tar","3/layer.tar"]}]"#;
        let mut h = tar::Header::new_gnu();
        h.set_size(manifest.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        outer
            .append_data(&mut h, "manifest.json", &manifest[..])
            .unwrap();
        let bytes = outer.into_inner().unwrap();
        let w = analyse(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(w.total, 1000 + 5000 + 10 + 20 + 1200 + 7);
        assert_eq!(w.wasted, 1000 + 5000 + 30);
        assert_eq!(
            w.files[0],
            WastedFile {
                path: "tmp/junk".into(),
                wasted: 5000,
                copies: 2
            }
        );
    }
}
