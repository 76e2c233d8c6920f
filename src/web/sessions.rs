//! Browser sessions of the web pages: a random token in an `HttpOnly`, `SameSite=Strict`
//! cookie, looked up here, with the CSRF token every form of that session must carry.
//! Held in memory: a restart signs everyone out of the pages (not out of their apps).

use std::collections::HashMap;
use std::sync::Mutex;

/// How long a page session lasts.
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;
/// Most sessions held at once; the oldest is dropped beyond it.
const MAX_SESSIONS: usize = 10_000;

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The operator, signed in with the admin password.
    Admin,
    /// An account, signed in with its own password.
    Account(String),
}

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub subject: Subject,
    /// The value every form of this session carries.
    pub csrf: String,
    pub expires_at: i64,
}

/// The sessions of one server.
#[derive(Debug, Default)]
pub struct WebSessions {
    sessions: Mutex<HashMap<String, WebSession>>,
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl WebSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, WebSession>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for `subject`; returns its cookie token and the session.
    pub fn create(&self, subject: Subject, now: i64) -> (String, WebSession) {
        let token = random_token();
        let session = WebSession {
            subject,
            csrf: random_token(),
            expires_at: now + SESSION_LIFETIME_SECS,
        };
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires_at > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The live session of `token`.
    pub fn get(&self, token: &str, now: i64) -> Option<WebSession> {
        let mut sessions = self.lock();
        match sessions.get(token) {
            Some(session) if session.expires_at > now => Some(session.clone()),
            Some(_) => {
                sessions.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`.
    pub fn end(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Ends every page session of the account `did` (its password changed, it was taken
    /// down or deleted).
    pub fn end_account(&self, did: &str) {
        self.lock()
            .retain(|_, s| s.subject != Subject::Account(did.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_end_and_are_bounded() {
        let sessions = WebSessions::default();
        let (token, session) = sessions.create(Subject::Admin, 1000);
        assert_eq!(session.expires_at, 1000 + SESSION_LIFETIME_SECS);
        assert_eq!(sessions.get(&token, 1001), Some(session.clone()));
        assert_eq!(sessions.get(&token, 1000 + SESSION_LIFETIME_SECS), None);
        assert_eq!(sessions.get("unknown", 1001), None);

        let (token, _) = sessions.create(Subject::Account("did:plc:a".into()), 2000);
        let (other, _) = sessions.create(Subject::Admin, 2000);
        sessions.end_account("did:plc:a");
        assert_eq!(sessions.get(&token, 2001), None);
        assert!(sessions.get(&other, 2001).is_some());
        sessions.end(&other);
        assert_eq!(sessions.get(&other, 2001), None);

        for i in 0..MAX_SESSIONS + 5 {
            sessions.create(Subject::Admin, 3000 + i as i64);
        }
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
    }
}
