"""Photo preparation: reading, face detection and landmarks, crops, masks, TFRecords."""
