//! Owns grouping jobs into calls: per agent, as many chunks as fit in one call, from at most
//! `batch_max_files` files and `batch_max_tokens` prompt tokens. A job too big for the
//! budget still goes, alone: it is one chunk already, the smallest unit we send.

use std::collections::BTreeSet;

use super::{FileWork, Routing};
use crate::review::finding::Category;

/// One planned call: `(file index, job index)` pairs, all for `agent`.
#[derive(Debug)]
pub struct Planned {
    pub agent: Category,
    pub items: Vec<(usize, usize)>,
    pub tokens: usize,
}

impl Planned {
    /// The distinct files of the call, in first-seen order.
    pub fn files(&self) -> Vec<usize> {
        let mut seen = Vec::new();
        for (f, _) in &self.items {
            if !seen.contains(f) {
                seen.push(*f);
            }
        }
        seen
    }
}

pub fn plan(work: &[FileWork], routing: &Routing) -> Vec<Planned> {
    let mut calls = Vec::new();
    for &agent in routing.agents.keys() {
        let mut current = Planned { agent, items: Vec::new(), tokens: 0 };
        let mut files = BTreeSet::new();
        for (f, file) in work.iter().enumerate() {
            for (j, job) in file.jobs.iter().enumerate().filter(|(_, job)| job.agent == agent) {
                let new_file = !files.contains(&f);
                let too_many_files = new_file && files.len() >= routing.batch_max_files;
                let too_many_tokens = current.tokens + job.tokens > routing.batch_max_tokens;
                if !current.items.is_empty() && (too_many_files || too_many_tokens) {
                    calls.push(std::mem::replace(&mut current, Planned { agent, items: Vec::new(), tokens: 0 }));
                    files.clear();
                }
                files.insert(f);
                current.tokens += job.tokens;
                current.items.push((f, j));
            }
        }
        if !current.items.is_empty() {
            calls.push(current);
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::llm::{Endpoint, ProviderKind};
    use crate::review::llm_agents::Job;
    use crate::store::CacheKey;
    use crate::syntax::Language;

    fn job(agent: Category, tokens: usize) -> Job {
        Job {
            agent,
            ranges: vec![],
            lines: vec![],
            start_line: 0,
            prompt_lines: vec![],
            tokens,
            key: CacheKey([0; 32]),
        }
    }

    fn file(jobs: Vec<Job>) -> FileWork {
        FileWork { path: "f".into(), text: Arc::from(""), language: Language::Python, jobs }
    }

    fn routing(max_files: usize, max_tokens: usize) -> Routing {
        let mut r = Routing { batch_max_files: max_files, batch_max_tokens: max_tokens, ..Default::default() };
        r.agents.insert(Category::Security, Endpoint::new(ProviderKind::OpenAi, "m"));
        r.agents.insert(Category::Correctness, Endpoint::new(ProviderKind::OpenAi, "m"));
        r
    }

    #[test]
    fn groups_per_agent_within_file_and_token_limits() {
        let work: Vec<FileWork> =
            (0..25).map(|_| file(vec![job(Category::Security, 100), job(Category::Correctness, 100)])).collect();
        let calls = plan(&work, &routing(10, 50_000));
        let security: Vec<_> = calls.iter().filter(|c| c.agent == Category::Security).collect();
        assert_eq!(security.len(), 3, "25 files, 10 per call");
        assert!(calls.iter().all(|c| c.files().len() <= 10));
        assert_eq!(calls.len(), 6);
    }

    #[test]
    fn a_job_over_budget_goes_alone_and_budget_splits_calls() {
        let work =
            vec![file(vec![job(Category::Security, 900), job(Category::Security, 300), job(Category::Security, 300)])];
        let calls = plan(&work, &routing(10, 500));
        let sizes: Vec<usize> = calls.iter().map(|c| c.items.len()).collect();
        assert_eq!(sizes, vec![1, 1, 1]);
        let work =
            vec![file(vec![job(Category::Security, 200), job(Category::Security, 200), job(Category::Security, 200)])];
        let sizes: Vec<usize> = plan(&work, &routing(10, 500)).iter().map(|c| c.items.len()).collect();
        assert_eq!(sizes, vec![2, 1]);
    }
}
