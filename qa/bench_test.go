package qa

import "testing"

func BenchmarkScoreResponse(b *testing.B) {
	resp := "<think>The question asks about the first Nobel Prize in Physics.</think>\n<search> first nobel prize physics </search>\n\n" +
		"<information>Doc 1(Title: \"Nobel Prize\") The first Nobel Prize in Physics was awarded in 1901 to Wilhelm Conrad Röntgen.</information>\n\n" +
		"<think>It was Röntgen.</think><answer> Wilhelm Conrad Röntgen </answer>"
	golds := []string{"Wilhelm Conrad Röntgen", "Röntgen"}
	for b.Loop() {
		ScoreResponse(resp, golds)
	}
}
