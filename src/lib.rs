//! wid
