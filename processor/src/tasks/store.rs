//! Saved task definitions: one file per task, `<data_dir>/tasks/<id>.json`, so a define costs
//! one small file whatever the number of tasks.
//!
//! A save writes a temp file of its own (`.<id>.json.<pid>-<n>.tmp`), fsyncs it, keeps the
//! current file as `<id>.json.prev` (a hard link), renames the temp over `<id>.json` and fsyncs
//! the directory: a reader, a crash or a SIGKILL sees the old definition or the new one, never
//! a part. A file that cannot be read at start is reported and its `.prev` copy used; a task
//! whose two copies are both unreadable is reported, left on disk, and not started. Callers
//! change one task at a time (the task master serialises them).
//!
//! An older processor kept every task in `<data_dir>/tasks.json`; at start its tasks are moved
//! into the directory (those not already there) and the file renamed `tasks.json.migrated`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use super::TaskDef;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot save task {id:?} in {dir}")]
    Save {
        id: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove task {id:?} from {dir}")]
    Remove {
        id: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the task store {dir}")]
    Open {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most bytes a saved task file may have (a script and its vars; the task API takes
/// bodies of 16 MiB at most).
const MAX_FILE: u64 = 32 << 20;

/// A task file that could not be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub path: PathBuf,
    pub reason: String,
}

/// What [`TaskStore::open`] found.
#[derive(Debug, Default)]
pub struct Restored {
    /// Definitions, by id order.
    pub tasks: Vec<TaskDef>,
    /// Files whose task could not be restored from them (the task is not started).
    pub unreadable: Vec<Unreadable>,
    /// Files that could not be read but whose `.prev` copy was used.
    pub recovered: Vec<Unreadable>,
}

/// The task directory.
#[derive(Debug)]
pub struct TaskStore {
    dir: PathBuf,
    temp_seq: AtomicU64,
}

impl TaskStore {
    /// Opens (creating) `<data_dir>/tasks`, moves a legacy `tasks.json` in, removes temp
    /// files a crash left, and reads every task.
    pub fn open(data_dir: &Path) -> Result<(TaskStore, Restored)> {
        let dir = data_dir.join("tasks");
        let open_err = |source| Error::Open {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(open_err)?;
        let store = TaskStore {
            dir: dir.clone(),
            temp_seq: AtomicU64::new(0),
        };
        let mut restored = Restored::default();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(open_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        for path in names {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".tmp") {
                // A save that never reached its rename.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            match read_def(&path) {
                Ok(def) => restored.tasks.push(def),
                Err(reason) => {
                    let prev = path.with_extension("json.prev");
                    match read_def(&prev) {
                        Ok(def) => {
                            restored.recovered.push(Unreadable { path, reason });
                            restored.tasks.push(def);
                        }
                        Err(_) => restored.unreadable.push(Unreadable { path, reason }),
                    }
                }
            }
        }
        store.migrate(data_dir, &mut restored)?;
        restored.tasks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((store, restored))
    }

    /// Moves the tasks of a legacy `<data_dir>/tasks.json` into the directory.
    fn migrate(&self, data_dir: &Path, restored: &mut Restored) -> Result<()> {
        let legacy = data_dir.join("tasks.json");
        let text = match lifecycle::files::read_text_capped(&legacy, MAX_FILE) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                restored.unreadable.push(Unreadable {
                    path: legacy,
                    reason: e.to_string(),
                });
                return Ok(());
            }
        };
        #[derive(Deserialize)]
        struct Saved {
            tasks: Vec<TaskDef>,
        }
        let saved = match serde_json::from_str::<Saved>(&text) {
            Ok(saved) => saved,
            Err(e) => {
                restored.unreadable.push(Unreadable {
                    path: legacy,
                    reason: e.to_string(),
                });
                return Ok(());
            }
        };
        for def in saved.tasks {
            if super::valid_id(&def.id) && !restored.tasks.iter().any(|t| t.id == def.id) {
                self.save(&def).map_err(|e| match e {
                    Error::Save { source, .. } => Error::Open {
                        dir: self.dir.clone(),
                        source,
                    },
                    other => other,
                })?;
                restored.tasks.push(def);
            }
        }
        std::fs::rename(&legacy, data_dir.join("tasks.json.migrated")).map_err(|source| {
            Error::Open {
                dir: self.dir.clone(),
                source,
            }
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Saves `def` (see the module documentation).
    pub fn save(&self, def: &TaskDef) -> Result<()> {
        let path = self.path(&def.id);
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{}.json.{}-{seq}.tmp", def.id, std::process::id()));
        let write = || -> std::io::Result<()> {
            let text = serde_json::to_vec_pretty(def).map_err(std::io::Error::other)?;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            drop(file);
            let prev = path.with_extension("json.prev");
            match std::fs::remove_file(&prev) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            match std::fs::hard_link(&path, &prev) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            std::fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        };
        write().map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            Error::Save {
                id: def.id.clone(),
                dir: self.dir.clone(),
                source,
            }
        })
    }

    /// Removes task `id`'s files.
    pub fn remove(&self, id: &str) -> Result<()> {
        let path = self.path(id);
        let remove = || -> std::io::Result<()> {
            for file in [path.clone(), path.with_extension("json.prev")] {
                match std::fs::remove_file(&file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            sync_dir(&self.dir)
        };
        remove().map_err(|source| Error::Remove {
            id: id.to_owned(),
            dir: self.dir.clone(),
            source,
        })
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn read_def(path: &Path) -> std::result::Result<TaskDef, String> {
    let text = lifecycle::files::read_text_capped(path, MAX_FILE).map_err(|e| e.to_string())?;
    let def: TaskDef = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let expected = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| {
            n.strip_suffix(".json")
                .or_else(|| n.strip_suffix(".json.prev"))
        })
        .unwrap_or_default();
    if def.id != expected || !super::valid_id(&def.id) {
        return Err(format!("holds task id {:?}, expected {expected:?}", def.id));
    }
    Ok(def)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: &str, script: &str) -> TaskDef {
        TaskDef {
            id: id.to_owned(),
            kind: "stream".into(),
            dbrps: Vec::new(),
            script: script.to_owned(),
            vars: Default::default(),
            status: "enabled".into(),
            created: String::new(),
            modified: String::new(),
            last_enabled: String::new(),
            version: None,
        }
    }

    fn ids_and_scripts(restored: &Restored) -> Vec<(&str, &str)> {
        restored
            .tasks
            .iter()
            .map(|t| (t.id.as_str(), t.script.as_str()))
            .collect()
    }

    #[test]
    fn saved_tasks_come_back_and_removed_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let (store, restored) = TaskStore::open(dir.path()).unwrap();
        assert!(restored.tasks.is_empty());
        store.save(&def("b", "1")).unwrap();
        store.save(&def("a", "1")).unwrap();
        store.save(&def("a", "2")).unwrap();
        store.save(&def("c", "1")).unwrap();
        store.remove("c").unwrap();
        let (_, restored) = TaskStore::open(dir.path()).unwrap();
        let got = ids_and_scripts(&restored);
        assert_eq!(got, vec![("a", "2"), ("b", "1")]);
        assert!(restored.unreadable.is_empty());
    }

    #[test]
    fn a_damaged_file_falls_back_to_its_previous_copy_and_spares_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = TaskStore::open(dir.path()).unwrap();
        store.save(&def("a", "old")).unwrap();
        store.save(&def("a", "new")).unwrap();
        store.save(&def("b", "only")).unwrap();
        store.save(&def("c", "kept")).unwrap();
        let tasks = dir.path().join("tasks");
        std::fs::write(tasks.join("a.json"), b"").unwrap();
        std::fs::write(tasks.join("b.json"), b"{\"id\": ").unwrap();
        // A crash between a temp file's write and its rename.
        std::fs::write(tasks.join(".c.json.1-0.tmp"), b"{").unwrap();
        let (_, restored) = TaskStore::open(dir.path()).unwrap();
        let got = ids_and_scripts(&restored);
        assert_eq!(got, vec![("a", "old"), ("c", "kept")]);
        assert_eq!(restored.recovered.len(), 1);
        assert_eq!(restored.unreadable.len(), 1);
        assert!(restored.unreadable[0].path.ends_with("b.json"));
        assert!(
            tasks.join("b.json").exists(),
            "an unreadable file is left for the operator"
        );
        assert!(!tasks.join(".c.json.1-0.tmp").exists());
    }

    #[test]
    fn a_legacy_tasks_json_is_moved_into_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = serde_json::json!({ "tasks": [def("x", "1"), def("y", "2")] });
        std::fs::write(dir.path().join("tasks.json"), legacy.to_string()).unwrap();
        let (_, restored) = TaskStore::open(dir.path()).unwrap();
        assert_eq!(restored.tasks.len(), 2);
        assert!(!dir.path().join("tasks.json").exists());
        assert!(dir.path().join("tasks.json.migrated").exists());
        let (_, again) = TaskStore::open(dir.path()).unwrap();
        assert_eq!(again.tasks.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_task_file_linked_to_an_endless_device_is_refused_not_read_forever() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = dir.path().join("tasks");
        std::fs::create_dir_all(&tasks).unwrap();
        std::os::unix::fs::symlink("/dev/zero", tasks.join("z.json")).unwrap();
        let (_, restored) = TaskStore::open(dir.path()).unwrap();
        assert_eq!(restored.unreadable.len(), 1);
        assert!(restored.unreadable[0].reason.contains("larger than"));
    }
}
