//! What a tensor's bytes really are: I2_S layouts, TQ2_0/TQ1_0, dense types, foreign layouts.
