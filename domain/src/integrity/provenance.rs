//! TODO(integrity): provenance
