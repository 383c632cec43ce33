//! The service registry: signed service records and the directory of what the network serves.
