use super::*;
use crate::repo::blockstore::MemoryBlockStore;

#[tokio::test]
async fn known_answers_on_memory_store() {
    testsuite::known_answer_suite(MemoryBlockStore::new).await;
}
