//! Workspace mode of one ADOM: the committed objects and, while locked, the lock holder's
//! pending copy (§5). Unlock without commit drops the copy.

use serde_json::{Value, json};

use super::objects::AdomObjects;
use super::scenario::WorkspaceMode;
use super::status::Status;

/// Who holds an ADOM lock and what they changed.
#[derive(Debug, Clone)]
pub struct Lock {
    /// Numeric session id of the holder (`lock_sid`).
    pub sid: u64,
    /// Admin user of the holder (`lock_user`).
    pub user: String,
    /// Unix time the lock was taken (`lock_time`).
    pub since: i64,
    pending: AdomObjects,
    dirty: bool,
}

/// Committed objects plus the lock state machine.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    /// Disabled or normal (lock) mode.
    pub mode: WorkspaceMode,
    committed: AdomObjects,
    lock: Option<Lock>,
}

impl Workspace {
    /// A workspace over `committed` objects.
    pub fn new(mode: WorkspaceMode, committed: AdomObjects) -> Self {
        Self {
            mode,
            committed,
            lock: None,
        }
    }

    /// What session `sid` sees: its own pending copy while it holds the lock.
    pub fn read(&self, sid: Option<u64>) -> &AdomObjects {
        match &self.lock {
            Some(lock) if Some(lock.sid) == sid => &lock.pending,
            _ => &self.committed,
        }
    }

    /// Runs a write for `sid`: directly when workspace mode is off, on the pending copy when
    /// `sid` holds the lock, otherwise -10147.
    pub fn write<T>(
        &mut self,
        sid: Option<u64>,
        f: impl FnOnce(&mut AdomObjects) -> Result<T, Status>,
    ) -> Result<T, Status> {
        match (self.mode, &mut self.lock) {
            (WorkspaceMode::Disabled, _) => f(&mut self.committed),
            (WorkspaceMode::Normal, Some(lock)) if Some(lock.sid) == sid => {
                let out = f(&mut lock.pending)?;
                lock.dirty = true;
                Ok(out)
            }
            _ => Err(Status::no_write_permission()),
        }
    }

    /// The committed objects, for out-of-band edits that bypass workspace mode.
    pub fn committed_mut(&mut self) -> &mut AdomObjects {
        &mut self.committed
    }

    /// `exec .../workspace/lock`: idempotent for the holder, -20055 for anyone else.
    pub fn lock(&mut self, sid: u64, user: &str, now: i64) -> Result<(), Status> {
        self.require_mode()?;
        match &self.lock {
            Some(lock) if lock.sid == sid => Ok(()),
            Some(_) => Err(Status::locked_by_other()),
            None => {
                self.lock = Some(Lock {
                    sid,
                    user: user.to_string(),
                    since: now,
                    pending: self.committed.clone(),
                    dirty: false,
                });
                Ok(())
            }
        }
    }

    /// `exec .../workspace/commit`: publishes the pending copy; the lock stays held.
    pub fn commit(&mut self, sid: u64) -> Result<(), Status> {
        self.require_mode()?;
        match &mut self.lock {
            Some(lock) if lock.sid == sid => {
                self.committed = lock.pending.clone();
                lock.dirty = false;
                Ok(())
            }
            Some(_) => Err(Status::locked_by_other()),
            None => Err(Status::no_write_permission()),
        }
    }

    /// `exec .../workspace/unlock`: drops uncommitted changes; unlocking an unlocked ADOM is a no-op.
    pub fn unlock(&mut self, sid: u64) -> Result<(), Status> {
        self.require_mode()?;
        match &self.lock {
            Some(lock) if lock.sid != sid => Err(Status::locked_by_other()),
            _ => {
                self.lock = None;
                Ok(())
            }
        }
    }

    /// Takes the lock for a session outside the API (a test playing another admin).
    pub fn force_lock(&mut self, sid: u64, user: &str, now: i64) {
        self.lock = Some(Lock {
            sid,
            user: user.to_string(),
            since: now,
            pending: self.committed.clone(),
            dirty: false,
        });
    }

    /// Drops any lock (and its pending copy).
    pub fn force_unlock(&mut self) {
        self.lock = None;
    }

    /// The current holder, if any.
    pub fn holder(&self) -> Option<&Lock> {
        self.lock.as_ref()
    }

    /// `get .../workspace/dirty`: `{"dirty": 0|1}` for the caller's own session.
    pub fn dirty(&self, sid: u64) -> Result<Option<Value>, Status> {
        self.require_mode()?;
        let dirty = self.lock.as_ref().is_some_and(|l| l.sid == sid && l.dirty);
        Ok(Some(json!({ "dirty": u8::from(dirty) })))
    }

    /// `get .../workspace/lockinfo`: -9 outside workspace mode, no data when unlocked.
    pub fn lockinfo(&self, adom: &str) -> Result<Option<Value>, Status> {
        self.require_mode()?;
        Ok(self.lock.as_ref().map(|l| {
            json!([{
                "lock_user": l.user,
                "lock_sid": l.sid,
                "lock_time": l.since,
                "dirty": u8::from(l.dirty),
                "adom_dirty": u8::from(l.dirty),
                "type": "adom",
                "obj_url": format!("/dvmdb/adom/{adom}"),
                "obj_oid": 0,
                "dev_oid": 0,
                "db_mode": 0,
                "flags": 0,
                "wfsid": 0,
            }])
        }))
    }

    fn require_mode(&self) -> Result<(), Status> {
        match self.mode {
            WorkspaceMode::Normal => Ok(()),
            WorkspaceMode::Disabled => Err(Status::command_invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::fortimanager::objects::Rules;
    use crate::sim::fortimanager::url::Table;
    use serde_json::json;

    const RULES: Rules = Rules {
        empty_group_ok: true,
    };

    fn add_host(ws: &mut Workspace, sid: u64) -> Result<String, Status> {
        ws.write(Some(sid), |db| {
            db.add(Table::Address, None, &json!({"name": "h"}), RULES)
        })
    }

    #[test]
    fn write_without_lock_is_no_write_permission() {
        let mut ws = Workspace::new(WorkspaceMode::Normal, AdomObjects::default());
        assert_eq!(add_host(&mut ws, 1), Err(Status::no_write_permission()));
    }

    #[test]
    fn second_session_cannot_lock_or_write() {
        let mut ws = Workspace::new(WorkspaceMode::Normal, AdomObjects::default());
        ws.lock(1, "a", 0).unwrap();
        assert_eq!(ws.lock(2, "b", 0), Err(Status::locked_by_other()));
        assert_eq!(add_host(&mut ws, 2), Err(Status::no_write_permission()));
        assert_eq!(ws.unlock(2), Err(Status::locked_by_other()));
    }

    #[test]
    fn commit_publishes_and_unlock_discards() {
        let mut ws = Workspace::new(WorkspaceMode::Normal, AdomObjects::default());
        ws.lock(1, "a", 0).unwrap();
        add_host(&mut ws, 1).unwrap();
        assert!(ws.read(Some(1)).table(Table::Address).contains_key("h"));
        assert!(!ws.read(Some(2)).table(Table::Address).contains_key("h"));
        ws.commit(1).unwrap();
        ws.write(Some(1), |db| db.delete(Table::Address, "h"))
            .unwrap();
        ws.unlock(1).unwrap();
        assert!(ws.read(Some(1)).table(Table::Address).contains_key("h"));
    }

    #[test]
    fn lockinfo_reports_holder_and_needs_workspace_mode() {
        let mut ws = Workspace::new(WorkspaceMode::Normal, AdomObjects::default());
        assert_eq!(ws.lockinfo("root"), Ok(None));
        ws.lock(7, "alice", 100).unwrap();
        let info = ws.lockinfo("root").unwrap().unwrap();
        assert_eq!(
            (info[0]["lock_user"].clone(), info[0]["lock_sid"].clone()),
            (json!("alice"), json!(7))
        );
        let off = Workspace::default();
        assert_eq!(off.lockinfo("root"), Err(Status::command_invalid()));
    }
}
