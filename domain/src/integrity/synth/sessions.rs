//! TODO(integrity): synth sessions
