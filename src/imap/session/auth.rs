//! The not-authenticated state's commands: LOGIN and AUTHENTICATE PLAIN (RFC 3501 §6.2, RFC
//! 4616, RFC 4959 SASL-IR), the password check's verdict, and what a first login prepares.

use super::error::{Code, Failure};
use super::special_use::ensure_special_folders;
use super::{LoginRequest, Session, State, Step, User, ok};
use crate::auth::users::AuthResult;
use crate::imap::parser::decode_base64;
use crate::imap::response::Output;

impl Session {
    pub(super) fn login(
        &mut self,
        tag: &str,
        username: &[u8],
        password: Vec<u8>,
    ) -> Result<Step, Failure> {
        self.may_authenticate()?;
        check_user_name(username)?;
        Ok(Step::Login(LoginRequest {
            tag: tag.to_string(),
            user: String::from_utf8_lossy(username).into_owned(),
            password,
            sasl: false,
        }))
    }

    pub(super) fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial_response: Option<&[u8]>,
    ) -> Result<Step, Failure> {
        if !matches!(self.state, State::NotAuthenticated) {
            return Err(Failure::bad("Already logged in"));
        }
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Err(Failure::No {
                code: None,
                text: "Unsupported authentication mechanism (use PLAIN)".into(),
            });
        }
        self.may_authenticate()?;
        match initial_response {
            Some(ir) => plain_login(tag, ir),
            // The server asks for the response with an empty challenge.
            None => Ok(Step::SaslChallenge(tag.to_string())),
        }
    }

    fn may_authenticate(&self) -> Result<(), Failure> {
        if !matches!(self.state, State::NotAuthenticated) {
            return Err(Failure::bad("Already logged in"));
        }
        if !self.auth_allowed() {
            return Err(Failure::no(
                Code::PrivacyRequired,
                "Use STARTTLS or port 993 first",
            ));
        }
        Ok(())
    }

    /// The client's answer to the empty AUTHENTICATE PLAIN challenge (base64, already checked
    /// by the parser), or None when it cancelled with `*`.
    pub fn sasl_response(&mut self, tag: &str, response: Option<&[u8]>, out: &mut Output) -> Step {
        let r = match response {
            Some(r) => plain_login(tag, r),
            None => Err(Failure::bad("AUTHENTICATE cancelled")),
        };
        r.unwrap_or_else(|f| {
            f.answer(out, tag);
            Step::Done
        })
    }

    /// The password check's verdict.
    pub fn login_done(&mut self, req: LoginRequest, result: AuthResult, out: &mut Output) -> Step {
        let answer = match result {
            AuthResult::Ok(user) => {
                if !self.ctx.enter(&user.name) {
                    crate::warn!(
                        "imap",
                        "{}: {} has {} sessions already; refused",
                        self.peer,
                        user.name,
                        self.ctx.max_user_connections
                    );
                    Err(Failure::no(
                        Code::Limit,
                        "Too many connections for this user; close some clients",
                    ))
                } else {
                    match crate::maildir::user_dir(&self.ctx.mail_root, &user.name) {
                        Ok(dir) => {
                            match &user.token {
                                Some(id) => crate::info!(
                                    "imap",
                                    "{}: {} logged in with app password {id}{}",
                                    self.peer,
                                    user.name,
                                    if user.read_only { " (read-only)" } else { "" }
                                ),
                                None => {
                                    crate::info!("imap", "{}: {} logged in", self.peer, user.name)
                                }
                            }
                            // A read-only login changes nothing, not even the folders.
                            if !user.read_only
                                && let Err(e) = ensure_special_folders(&dir)
                            {
                                crate::warn!(
                                    "imap",
                                    "{}: preparing {}: {e}",
                                    self.peer,
                                    dir.display()
                                );
                            }
                            self.token_checked = std::time::Instant::now();
                            self.state = State::Authenticated(User {
                                name: user.name,
                                dir,
                                read_only: user.read_only,
                                token: user.token,
                            });
                            Ok(())
                        }
                        Err(why) => {
                            // The users file refuses such names already; never a path outside.
                            crate::warn!("imap", "{}: {:?}: {why}", self.peer, user.name);
                            self.ctx.leave(&user.name);
                            Err(Failure::no(
                                Code::Unavailable,
                                "This account cannot be served",
                            ))
                        }
                    }
                }
            }
            AuthResult::BadCredentials => {
                crate::info!("imap", "{}: failed login for {:?}", self.peer, req.user);
                Err(Failure::no(
                    Code::AuthenticationFailed,
                    "Authentication failed",
                ))
            }
            AuthResult::Blocked => {
                // The same line as any failure (fail2ban matches it), marked.
                crate::info!(
                    "imap",
                    "{}: failed login for {:?} (blocked: too many failures from this address)",
                    self.peer,
                    req.user
                );
                Err(Failure::no(
                    Code::Unavailable,
                    "Too many failed logins from your address; try again later",
                ))
            }
            AuthResult::Unavailable(why) => {
                crate::warn!(
                    "imap",
                    "{}: cannot check the password of {:?}: {why}",
                    self.peer,
                    req.user
                );
                Err(Failure::no(
                    Code::Unavailable,
                    "Authentication is unavailable right now",
                ))
            }
        };
        match answer {
            Ok(()) => ok(
                out,
                &req.tag,
                &format!("[CAPABILITY {}] Logged in", self.capabilities()),
            ),
            Err(f) => f.answer(out, &req.tag),
        }
        Step::Done
    }
}

/// The longest user name a login may give (an address is at most 254 octets, RFC 5321).
const MAX_USER_NAME: usize = 320;

/// A user name no account can have is refused before it is counted, logged or checked.
fn check_user_name(name: &[u8]) -> Result<(), Failure> {
    if name.len() > MAX_USER_NAME {
        return Err(Failure::no(
            Code::AuthenticationFailed,
            "Authentication failed",
        ));
    }
    Ok(())
}

/// The password check a PLAIN response asks for.
fn plain_login(tag: &str, b64: &[u8]) -> Result<Step, Failure> {
    match sasl_plain(b64) {
        Some((user, password)) => {
            check_user_name(user.as_bytes())?;
            Ok(Step::Login(LoginRequest {
                tag: tag.to_string(),
                user,
                password,
                sasl: true,
            }))
        }
        // RFC 4616: a malformed message fails the authentication (as Dovecot answers).
        None => Err(Failure::no(
            Code::AuthenticationFailed,
            "Malformed PLAIN response",
        )),
    }
}

/// `authzid NUL authcid NUL password`, base64; only an empty or identical authzid is accepted.
fn sasl_plain(b64: &[u8]) -> Option<(String, Vec<u8>)> {
    let raw = decode_base64(b64)?;
    let mut parts = raw.split(|&b| b == 0);
    let authz = parts.next()?;
    let authc = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() || (!authz.is_empty() && authz != authc) {
        return None;
    }
    Some((String::from_utf8(authc.to_vec()).ok()?, pass.to_vec()))
}
