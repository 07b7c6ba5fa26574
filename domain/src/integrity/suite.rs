//! TODO(integrity): suite
