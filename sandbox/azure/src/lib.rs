//! Local Azure for the routewarden sandbox.
