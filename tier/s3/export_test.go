package s3

// SetListPageSize makes List fetch n keys per ListObjectsV2 page, so tests
// can cross page boundaries without writing a thousand objects.
func SetListPageSize(b *Bucket, n int32) { b.listPage = n }
