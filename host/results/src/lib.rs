//! Results database and reports for the annvil host (work in progress).
