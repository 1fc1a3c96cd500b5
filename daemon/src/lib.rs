//! routewarden: the daemon library.
