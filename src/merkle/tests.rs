use super::*;
use crate::verify;
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Default)]
struct MemTree {
    nodes: HashMap<NodeId, Hash>,
    frontier: Frontier,
    leaves: Vec<Hash>,
}

impl NodeReader for MemTree {
    type Error = NodeId;
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, NodeId> {
        ids.iter().map(|id| self.nodes.get(id).copied().ok_or(*id)).collect()
    }
}

impl MemTree {
    fn with_leaves(n: u64) -> MemTree {
        let mut t = MemTree::default();
        for i in 0..n {
            t.push(verify::leaf_hash(&i.to_be_bytes()));
        }
        t
    }
    fn push(&mut self, leaf: Hash) {
        let nodes = &mut self.nodes;
        self.frontier.append(leaf, |id, h| {
            assert!(nodes.insert(id, *h).is_none(), "node {id:?} written twice");
        });
        self.leaves.push(leaf);
    }
}

#[test]
fn stores_about_two_hashes_per_leaf() {
    let t = MemTree::with_leaves(1024);
    assert_eq!(t.nodes.len(), 2047);
}

#[test]
fn exhaustive_small_trees_match_the_rfc_definition() {
    let t = MemTree::with_leaves(70);
    for size in 0..=70u64 {
        let leaves = &t.leaves[..size as usize];
        let r = root(&t, size).unwrap();
        assert_eq!(r, reference::root(leaves), "root at {size}");
        let f = Frontier::load(&t, size).unwrap();
        assert_eq!(f.root(), r, "frontier root at {size}");
        for index in 0..size {
            let p = prove_inclusion(&t, index, size).unwrap();
            assert_eq!(p, reference::inclusion_path(index, leaves), "inclusion {index}/{size}");
            verify::inclusion(index, size, &leaves[index as usize], &p, &r).unwrap();
        }
        for old in 0..=size {
            let p = prove_consistency(&t, old, size).unwrap();
            assert_eq!(p, reference::consistency_proof(old, leaves), "consistency {old}->{size}");
            let old_root = reference::root(&t.leaves[..old as usize]);
            verify::consistency(old, size, &old_root, &r, &p).unwrap();
        }
    }
}

fn flip(p: &mut [Hash], i: usize, bit: usize) {
    p[i][bit / 8] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_sizes_match_and_mutations_fail(size in 1u64..600, a in any::<u64>(), b in any::<u64>(), bit in 0usize..256) {
        let t = MemTree::with_leaves(size);
        let r = root(&t, size).unwrap();
        prop_assert_eq!(r, reference::root(&t.leaves));
        let index = a % size;
        let leaf = t.leaves[index as usize];
        let p = prove_inclusion(&t, index, size).unwrap();
        prop_assert_eq!(&p, &reference::inclusion_path(index, &t.leaves));
        prop_assert!(verify::inclusion(index, size, &leaf, &p, &r).is_ok());
        for i in 0..p.len() {
            let mut q = p.clone();
            flip(&mut q, i, bit);
            prop_assert!(verify::inclusion(index, size, &leaf, &q, &r).is_err());
        }
        if !p.is_empty() {
            prop_assert!(verify::inclusion(index, size, &leaf, &p[..p.len() - 1], &r).is_err());
        }
        let mut longer = p.clone();
        longer.push(r);
        prop_assert!(verify::inclusion(index, size, &leaf, &longer, &r).is_err());
        prop_assert!(verify::inclusion(index, size, &verify::leaf_hash(b"other"), &p, &r).is_err());

        let old = b % (size + 1);
        let old_root = reference::root(&t.leaves[..old as usize]);
        let c = prove_consistency(&t, old, size).unwrap();
        prop_assert_eq!(&c, &reference::consistency_proof(old, &t.leaves));
        prop_assert!(verify::consistency(old, size, &old_root, &r, &c).is_ok());
        for i in 0..c.len() {
            let mut q = c.clone();
            flip(&mut q, i, bit);
            prop_assert!(verify::consistency(old, size, &old_root, &r, &q).is_err());
        }
        if !c.is_empty() {
            prop_assert!(verify::consistency(old, size, &old_root, &r, &c[..c.len() - 1]).is_err());
            let mut wrong_old = old_root;
            wrong_old[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify::consistency(old, size, &wrong_old, &r, &c).is_err());
        }
        let mut wrong_new = r;
        wrong_new[bit / 8] ^= 1 << (bit % 8);
        if old > 0 {
            prop_assert!(verify::consistency(old, size, &old_root, &wrong_new, &c).is_err());
        }
    }
}
