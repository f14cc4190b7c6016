//! weft's edge worker (being built).
