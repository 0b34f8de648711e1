//! Users and their credentials: the Dovecot passwd-file ([`passwd`]: parsing and safe editing),
//! its password schemes ([`scheme`]: verify and hash as `doveadm pw` does) and the live user
//! table the servers authenticate against ([`users`]: reloaded when the file changes), and app
//! passwords ([`tokens`]: PASETO tokens, one per client).

pub mod login;
pub mod passwd;
pub mod scheme;
pub mod throttle;
pub mod tokens;
pub mod users;
