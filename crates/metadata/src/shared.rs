//! The current image, shared by every part of a node that reads metadata: readers take the `Arc` of the image
//! in force (a pointer copy under a read lock held for nanoseconds) and keep a consistent view for as long as
//! they hold it; the one writer swaps in the next image.

use crate::image::MetadataImage;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct SharedImage {
    current: RwLock<Arc<MetadataImage>>,
}

impl SharedImage {
    pub fn new(image: MetadataImage) -> Self {
        SharedImage {
            current: RwLock::new(Arc::new(image)),
        }
    }

    /// The image in force now.
    pub fn current(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes `image` the one in force.
    pub fn publish(&self, image: MetadataImage) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(image);
    }
}
