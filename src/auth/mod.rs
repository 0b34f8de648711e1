//! Users and their credentials: the Dovecot passwd-file ([`passwd`]: parsing and safe editing),
//! its password schemes ([`scheme`]: verify and hash as `doveadm pw` does) and the live user
//! table the servers authenticate against ([`users`]: reloaded when the file changes).

pub mod passwd;
pub mod scheme;
pub mod throttle;
pub mod users;
