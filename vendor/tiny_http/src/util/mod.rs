pub(crate) use self::deadline::DeadlineStream;
pub(crate) use self::messages_queue::MessagesQueue;
pub(crate) use self::refuser::Refuser;
pub(crate) use self::slots::Slots;
pub(crate) use self::task_pool::TaskPool;
pub(crate) use self::waiting::{Registration, Waiting};

pub(crate) mod body;
mod deadline;
pub(crate) mod lines;
mod messages_queue;
mod refuser;
mod slots;
mod task_pool;
mod waiting;
