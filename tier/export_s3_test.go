package tier

// SetS3ListPageSize makes List fetch n keys per ListObjectsV2 page, so tests
// can cross page boundaries without writing a thousand objects.
func SetS3ListPageSize(b *S3Bucket, n int32) { b.listPage = n }
