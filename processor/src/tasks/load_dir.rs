//! `[load] dir`: the tasks defined by files at start, as Kapacitor's load directory (stream
//! tasks only: `<dir>/tasks/*.tick`).

use std::path::PathBuf;

use super::{Error, Result, Stamp, TaskMaster, TaskRequest};
use crate::tick::{self, VarOverrides};

impl TaskMaster {
    /// `[load] dir`: every `<dir>/tasks/*.tick` becomes an enabled stream task named after
    /// the file; each must name its `dbrp`.
    pub(super) fn load_dir(&self) -> Result<()> {
        let dir = self.config.load.dir.join("tasks");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "load dir has no tasks directory");
                return Ok(());
            }
            Err(e) => {
                return Err(Error::Load {
                    path: dir,
                    reason: e.to_string(),
                });
            }
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files {
            if path.extension().and_then(|e| e.to_str()) != Some("tick") {
                tracing::warn!(file = %path.display(), "load dir: ignoring a file that is not .tick");
                continue;
            }
            let load_err = |reason: String| Error::Load {
                path: path.clone(),
                reason,
            };
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let script = lifecycle::files::read_text_capped(&path, crate::tick::MAX_SCRIPT_FILE)
                .map_err(|e| load_err(e.to_string()))?;
            let pipeline = tick::compile(&script, &VarOverrides::new())
                .map_err(|e| load_err(e.to_string()))?;
            if pipeline.dbrps.is_empty() {
                return Err(load_err(
                    "the script names no dbrp (add `dbrp \"db\".\"rp\"`)".into(),
                ));
            }
            let request = TaskRequest {
                id: Some(id.clone()),
                kind: Some("stream".into()),
                dbrps: Some(Vec::new()),
                script: Some(script),
                vars: None,
                status: Some("enabled".into()),
            };
            let exists = self.lock().contains_key(&id);
            let result = if exists {
                self.update_as(&id, request, Stamp::Load).map(drop)
            } else {
                self.create_as(request, Stamp::Load).map(drop)
            };
            result.map_err(|e| load_err(e.to_string()))?;
            tracing::info!(task = %id, file = %path.display(), "task loaded");
        }
        Ok(())
    }
}
