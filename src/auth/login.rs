//! Which credential a login's password is, as `--auth` allows: the user's password (the
//! passwd-file), an app password (a token of [`super::tokens`]), or either. A token names
//! its user, who must still be in the passwd-file; the answer to a failure never says which
//! kind was tried.

use super::tokens::{Check, TokenStore};
use super::users::{AuthResult, UserDb};

/// `--auth`: what a password may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Only the passwd-file's password.
    Password,
    /// Only app passwords: the real password stays off every device.
    Token,
    /// Either (the default).
    Both,
}

impl AuthMode {
    pub fn parse(s: &str) -> Option<AuthMode> {
        match s {
            "password" => Some(AuthMode::Password),
            "token" => Some(AuthMode::Token),
            "both" => Some(AuthMode::Both),
            _ => None,
        }
    }
}

/// Checks a login (blocking: may hash a password or read the token directory). Never logs
/// the password or the token.
pub fn check(
    users: &UserDb,
    tokens: &TokenStore,
    mode: AuthMode,
    user: &str,
    password: &[u8],
) -> AuthResult {
    if mode != AuthMode::Password {
        match tokens.check(user, password) {
            Ok(Check::Valid(record)) => {
                return match users.lookup_active(user) {
                    Some(mut u) => {
                        crate::debug!("auth", "{:?} used token {}", u.name, record.id);
                        u.read_only = record.read_only;
                        u.token = Some(record.id);
                        AuthResult::Ok(u)
                    }
                    None => {
                        crate::debug!("auth", "token {} of a removed or locked user", record.id);
                        AuthResult::BadCredentials
                    }
                };
            }
            Ok(Check::Refused(why)) => {
                crate::debug!("auth", "{user:?}: {why}");
                return AuthResult::BadCredentials;
            }
            Ok(Check::NotAToken) if mode == AuthMode::Token => {
                crate::debug!("auth", "{user:?}: a password where only tokens are allowed");
                return AuthResult::BadCredentials;
            }
            Ok(Check::NotAToken) => {}
            Err(e) => {
                let reason = format!("checking a token: {e}");
                crate::warn!("auth", "cannot check the login of {user:?}: {reason}");
                return AuthResult::Unavailable(reason);
            }
        }
    }
    users.authenticate(user, password)
}
