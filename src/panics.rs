//! Owns turning a caught panic's payload into a message for logs and users.

use std::any::Any;

/// The text a panic was raised with, or a placeholder for non-string payloads.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
