//! Users and their credentials: the Dovecot passwd-file (and, later, password schemes and
//! app tokens).

pub mod passwd;
