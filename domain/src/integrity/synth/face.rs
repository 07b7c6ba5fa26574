//! TODO(integrity): synth face
