//! weft's browser SDK (being built).
