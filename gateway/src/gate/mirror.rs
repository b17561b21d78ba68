//! A node of a cluster keeps copies of the cluster's requests and grants: changes made
//! on other nodes, announced on Redis's events channel, are read back and applied here.
