//! TODO(integrity): face
