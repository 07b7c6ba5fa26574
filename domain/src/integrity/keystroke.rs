//! TODO(integrity): keystroke
