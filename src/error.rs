//! The crate's error type: infrastructure failures only. A client's mistake is not an error
//! but an ordinary response (400, 401, 413...).

use std::fmt;

#[derive(Debug)]
pub enum Error {
    Db(rusqlite::Error),
    Io(std::io::Error),
    /// A setting that cannot work, said in words a user can act on.
    Config(String),
    /// The group-commit writer thread is gone; nothing more can be stored.
    WriterStopped,
    /// A write in a batch failed; the batch's shared error, in words.
    NotStored(String),
    /// The HTTP server could not start or its accept thread died.
    Server(String),
    /// A page template failed to render: a bug in the templates, never the user's data.
    Render(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Db(e) => write!(f, "database: {e}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Config(e) => write!(f, "{e}"),
            Error::WriterStopped => write!(f, "the database writer has stopped"),
            Error::NotStored(e) => write!(f, "not stored: {e}"),
            Error::Server(e) => write!(f, "server: {e}"),
            Error::Render(e) => write!(f, "page template: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Db(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
