//! The Hive folder as the table: new files are already in place under the window's names;
//! what the window's previous commit wrote and this one did not is deleted.

use super::WindowFiles;
use crate::sink::store::{StoreError, Warehouse};

/// Deletes the window's stale files (a reader between the puts and this sees both).
pub(super) async fn commit(wh: &Warehouse, w: &WindowFiles<'_>) -> Result<(), StoreError> {
    for stale in w
        .previous
        .iter()
        .filter(|k| !w.files.iter().any(|f| &f.key == *k))
    {
        wh.delete(stale).await?;
    }
    Ok(())
}
