//! TODO(integrity): transcription
