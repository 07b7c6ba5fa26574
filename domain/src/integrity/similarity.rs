//! TODO(integrity): similarity
