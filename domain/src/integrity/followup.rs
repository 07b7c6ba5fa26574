//! TODO(integrity): followup
