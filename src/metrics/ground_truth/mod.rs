//! Agreement with what the dataset knows to be true: the concepts that define each class
//! ([`concept_fidelity`]) and where the object lies in the image ([`localisation`]).

pub mod concept_fidelity;
pub mod localisation;

pub use concept_fidelity::{class_fidelity, concept_fidelity, contrast_weights, groups_from_names, ClassFidelity, ConceptFidelity};
pub use localisation::{
    ceiling_map, localisation, mass_inside, pointing_game, rank_accuracy, resolution_ceiling, uniform_baseline, BoundingBox, Grid,
    Localisation,
};
