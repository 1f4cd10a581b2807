//! JSON-RPC login sessions: a token for the client, a numeric id in replies and lock info,
//! expiring after `idle_timeout_api` without use (tokio time, so tests can pause it).

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// One logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Numeric session id (`session` in replies, `lock_sid`).
    pub id: u64,
    /// Admin user that logged in.
    pub user: String,
    last_used: Instant,
}

/// All sessions of one FortiManager.
#[derive(Debug)]
pub struct Sessions {
    by_token: HashMap<String, Session>,
    api_ids: HashMap<String, u64>,
    next_id: u64,
    idle: Duration,
}

impl Sessions {
    /// Sessions expiring after `idle` without a call.
    pub fn new(idle: Duration) -> Self {
        Self {
            by_token: HashMap::new(),
            api_ids: HashMap::new(),
            next_id: 29259,
            idle,
        }
    }

    /// Starts a session for `user`; returns the token and the numeric id.
    pub fn login(&mut self, user: &str) -> (String, u64) {
        let id = self.allocate();
        let token = new_token();
        self.by_token.insert(
            token.clone(),
            Session {
                id,
                user: user.to_string(),
                last_used: Instant::now(),
            },
        );
        (token, id)
    }

    /// Looks a token up and refreshes its idle timer; an expired session is dropped.
    pub fn touch(&mut self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let session = self.by_token.get_mut(token)?;
        if now.duration_since(session.last_used) >= self.idle {
            self.by_token.remove(token);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// The idle timeout (`idle_timeout_api`).
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Changes the idle timeout; live sessions follow it from their next call.
    pub fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
    }

    /// Ends a session; false when it did not exist.
    pub fn logout(&mut self, token: &str) -> bool {
        self.by_token.remove(token).is_some()
    }

    /// A stable numeric id for an API-key user, so its workspace locks have an owner.
    pub fn api_session(&mut self, user: &str) -> u64 {
        if let Some(id) = self.api_ids.get(user) {
            return *id;
        }
        let id = self.allocate();
        self.api_ids.insert(user.to_string(), id);
        id
    }

    /// A numeric id for a session that exists only to hold a lock (tests playing another admin).
    pub fn phantom(&mut self) -> u64 {
        self.allocate()
    }

    /// Drops every session of `user` (e.g. the user was deleted or its password changed).
    pub fn end_user(&mut self, user: &str) {
        self.by_token.retain(|_, s| s.user != user);
        self.api_ids.remove(user);
    }

    /// Number of live (not yet expired) sessions.
    pub fn live(&self) -> usize {
        let now = Instant::now();
        self.by_token
            .values()
            .filter(|s| now.duration_since(s.last_used) < self.idle)
            .count()
    }

    fn allocate(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// A base64-looking token ending `==`, like FortiManager's.
fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    let mut token: String = (0..86)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    token.push_str("==");
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn session_expires_after_idle_timeout() {
        let mut sessions = Sessions::new(Duration::from_secs(900));
        let (token, id) = sessions.login("alice");
        assert!(token.ends_with("=="));
        tokio::time::advance(Duration::from_secs(899)).await;
        assert_eq!(sessions.touch(&token).map(|s| s.id), Some(id));
        tokio::time::advance(Duration::from_secs(899)).await;
        assert!(
            sessions.touch(&token).is_some(),
            "each call restarts the idle timer"
        );
        tokio::time::advance(Duration::from_secs(900)).await;
        assert_eq!(sessions.touch(&token), None);
    }

    #[test]
    fn logout_ends_the_session() {
        let mut sessions = Sessions::new(Duration::from_secs(900));
        let (token, _) = sessions.login("alice");
        assert!(sessions.logout(&token));
        assert!(!sessions.logout(&token));
    }
}
