"""The data map (SPEC.md section 6): workloads and external destinations as nodes, flows of
personal data between them as edges, and the changes worth telling a team about."""
