//! Directories and documents in memory. The root folder is `null` or `""`;
//! `"root"` is just an unknown id (404).

use serde_json::{Value, json};

use super::actions::Reply;
use super::server::Shared;
use super::store::{Document, Folder, Store, TaskKind, new_id};

/// Handle a directory or document action.
pub(crate) fn handle(shared: &Shared, action: &str, me: &str, data: &Value) -> Reply {
    let now = shared.now();
    let lifetime = shared.config.task_lifetime.as_secs_f64();
    let p5 = shared.config.protocol_version >= 5;
    let mut store = shared.store();
    let s = &mut *store;
    let text = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
    let id = |k: &str| data[k].as_str().map(str::to_owned);
    match action {
        "list_directory" => list_directory(s, id("folder_id").as_deref()),
        "get_directory_info" => directory_info(s, &text("directory_id")),
        "create_directory" if !s.may(me, "create_directory") => denied(),
        "create_directory" => {
            let exists_ok = data["exists_ok"].as_bool().unwrap_or_default();
            create_directory(s, id("parent_id").as_deref(), &text("name"), exists_ok, now)
        }
        "rename_directory" if !s.may(me, "rename_directory") => denied(),
        "rename_directory"
            if s.folders.get(&text("folder_id")).map(|f| &f.name) == Some(&text("new_name")) =>
        {
            same_name()
        }
        "rename_directory" => place_directory(s, &text("folder_id"), None, Some(&text("new_name"))),
        "move_directory" if !s.may(me, "move") => denied(),
        "move_directory" => {
            let target = id("target_folder_id");
            place_directory(s, &text("folder_id"), Some(target.as_deref()), None)
        }
        "delete_directory" if !s.may(me, "delete_directory") => denied(),
        "delete_directory" => delete_directory(s, &text("folder_id")),
        "create_document" if !s.may(me, "create_document") => denied(),
        "create_document" => {
            let Ok(folder) = s.folder_ref(id("folder_id").as_deref()) else {
                return Reply::bare(404, "Directory not found");
            };
            // A folder of that name in the same place (protocol 13 answers
            // 500 before this point, its own bug).
            if sibling_named(s, &folder, &text("title")).is_some() {
                return Reply::bare(400, SAME_NAME);
            }
            let doc = new_id();
            let document = Document {
                title: text("title"),
                folder,
                created_time: now,
                last_modified: now,
                revision: None,
            };
            s.documents.insert(doc.clone(), document);
            let mut answer = json!({"task_data": task(s, TaskKind::Upload, &doc, now, lifetime)});
            if p5 {
                answer["document_id"] = json!(doc);
            }
            Reply::new(200, "Task successfully created", answer)
        }
        "upload_document" if !s.may(me, "create_document") => denied(),
        "upload_document" => {
            let doc = text("document_id");
            if !s.documents.contains_key(&doc) {
                return not_found();
            }
            let answer = json!({"task_data": task(s, TaskKind::Upload, &doc, now, lifetime)});
            Reply::new(200, "Task successfully created", answer)
        }
        "get_document" => {
            let doc = text("document_id");
            let title = match revised(s, &doc) {
                Ok(d) => d.title.clone(),
                Err(reply) => return reply,
            };
            let task_data = task(s, TaskKind::Download, &doc, now, lifetime);
            let answer = json!({"document_id": doc, "title": title, "task_data": task_data});
            Reply::new(200, "Document successfully fetched", answer)
        }
        "get_document_info" => document_info(s, &text("document_id")),
        "rename_document" if !s.may(me, "rename_document") => denied(),
        "rename_document" => match s.documents.get_mut(&text("document_id")) {
            Some(d) if d.title == text("new_title") => same_name(),
            Some(d) => {
                d.title = text("new_title");
                Reply::bare(200, "Document renamed successfully")
            }
            None => not_found(),
        },
        "move_document" if !s.may(me, "move") => denied(),
        "move_document" => {
            let Ok(target) = s.folder_ref(id("target_folder_id").as_deref()) else {
                return Reply::bare(404, "Target directory not found");
            };
            match s.documents.get_mut(&text("document_id")) {
                Some(d) => {
                    d.folder = target;
                    Reply::bare(200, "Document moved successfully")
                }
                None => not_found(),
            }
        }
        "delete_document" if !s.may(me, "delete_document") => denied(),
        "delete_document" => match s.documents.remove(&text("document_id")) {
            Some(_) => Reply::bare(200, "Document deleted successfully"),
            None => not_found(),
        },
        _ => Reply::bare(400, format!("Unknown action: {action}")),
    }
}

fn denied() -> Reply {
    Reply::bare(403, "Permission denied")
}

fn not_found() -> Reply {
    Reply::bare(404, "Document not found")
}

fn task(s: &mut Store, kind: TaskKind, doc: &str, now: f64, lifetime: f64) -> Value {
    let id = s.new_task(kind, doc, now, lifetime);
    json!({"task_id": id, "start_time": now, "end_time": now + lifetime})
}

/// A document that has content (the real server's "active revision").
fn revised<'a>(s: &'a Store, doc: &str) -> Result<&'a Document, Reply> {
    let document = s.documents.get(doc).ok_or_else(not_found)?;
    match document.revision {
        Some(_) => Ok(document),
        None => Err(Reply::bare(500, "No active revisions found.")),
    }
}

fn list_directory(s: &Store, folder: Option<&str>) -> Reply {
    let Ok(folder) = s.folder_ref(folder) else {
        return Reply::bare(404, "Directory not found");
    };
    // The real server names the root "/" when it is the listed folder's parent.
    let parent_id = match folder.as_ref().and_then(|f| s.folders.get(f)) {
        None => Value::Null,
        Some(Folder { parent: None, .. }) => json!("/"),
        Some(Folder {
            parent: Some(p), ..
        }) => json!(p),
    };
    let mut documents: Vec<(&String, &Document)> = s
        .documents
        .iter()
        .filter(|(_, d)| d.folder == folder && d.revision.is_some())
        .collect();
    documents.sort_by(|a, b| a.1.created_time.total_cmp(&b.1.created_time));
    let documents: Vec<Value> = documents
        .into_iter()
        .filter_map(|(id, d)| {
            let r = d.revision.as_ref()?;
            Some(json!({
                "id": id, "title": d.title, "created_time": d.created_time,
                "last_modified": d.last_modified, "sha256": r.sha256, "size": r.data.len(),
            }))
        })
        .collect();
    let mut folders: Vec<(&String, &Folder)> = s
        .folders
        .iter()
        .filter(|(_, f)| f.parent == folder)
        .collect();
    folders.sort_by(|a, b| a.1.created_time.total_cmp(&b.1.created_time));
    let folders: Vec<Value> = folders
        .into_iter()
        .map(|(id, f)| json!({"id": id, "name": f.name, "created_time": f.created_time}))
        .collect();
    Reply::new(
        200,
        "Directory listing successful",
        json!({"parent_id": parent_id, "documents": documents, "folders": folders}),
    )
}

fn directory_info(s: &Store, id: &str) -> Reply {
    let Some(folder) = s.folders.get(id) else {
        return Reply::bare(404, "Directory not found");
    };
    let here = Some(id.to_owned());
    let children = s.folders.values().filter(|f| f.parent == here).count()
        + s.documents.values().filter(|d| d.folder == here).count();
    Reply::new(
        200,
        "Directory info retrieved successfully",
        json!({
            "directory_id": id, "count_of_child": children, "parent_id": folder.parent,
            "name": folder.name, "created_time": folder.created_time,
            "access_rules": [], "info_code": 0,
        }),
    )
}

fn sibling_named(s: &Store, parent: &Option<String>, name: &str) -> Option<String> {
    s.folders
        .iter()
        .find(|(_, f)| &f.parent == parent && f.name == name)
        .map(|(id, _)| id.clone())
}

/// A rename to the current name (3 and 13 alike, after the 404 and 403 checks).
fn same_name() -> Reply {
    Reply::bare(400, "New name is the same as the current name")
}

const SAME_NAME: &str = "A folder with the same name already exists in the target directory";

fn create_directory(
    s: &mut Store,
    parent: Option<&str>,
    name: &str,
    exists_ok: bool,
    now: f64,
) -> Reply {
    let Ok(parent) = s.folder_ref(parent) else {
        return Reply::bare(404, "Parent directory not found");
    };
    if let Some(existing) = sibling_named(s, &parent, name) {
        if !exists_ok {
            return Reply::bare(400, SAME_NAME);
        }
        let created = s.folders.get(&existing).map_or(now, |f| f.created_time);
        let answer = json!({"id": existing, "name": name, "last_modified": created});
        return Reply::new(200, "Directory created successfully", answer);
    }
    let id = new_id();
    let folder = Folder {
        name: name.to_owned(),
        parent,
        created_time: now,
    };
    s.folders.insert(id.clone(), folder);
    let answer = json!({"id": id, "name": name, "last_modified": now});
    Reply::new(200, "Directory created successfully", answer)
}

/// Rename (`name`) or move (`target`, `Some(None)` being the root) a folder.
fn place_directory(
    s: &mut Store,
    id: &str,
    target: Option<Option<&str>>,
    name: Option<&str>,
) -> Reply {
    let Some(folder) = s.folders.get(id).cloned() else {
        return Reply::bare(404, "Directory not found");
    };
    let parent = match target {
        None => folder.parent.clone(),
        Some(t) => match s.folder_ref(t) {
            Ok(p) => p,
            Err(()) => return Reply::bare(404, "Target directory not found"),
        },
    };
    // Walk up from the target: reaching the folder itself would make a cycle.
    let mut up = parent.clone();
    while let Some(p) = up {
        if p == id {
            return Reply::bare(
                400,
                "Cannot move a directory into itself or its subdirectory",
            );
        }
        up = s.folders.get(&p).and_then(|f| f.parent.clone());
    }
    let name = name.map_or(folder.name.clone(), str::to_owned);
    if sibling_named(s, &parent, &name).is_some_and(|other| other != id) {
        return Reply::bare(400, SAME_NAME);
    }
    let message = if target.is_some() {
        "Directory moved successfully"
    } else {
        "Directory renamed successfully"
    };
    s.folders.insert(
        id.to_owned(),
        Folder {
            name,
            parent,
            ..folder
        },
    );
    Reply::bare(200, message)
}

fn delete_directory(s: &mut Store, id: &str) -> Reply {
    if !s.folders.contains_key(id) {
        return Reply::bare(404, "Directory not found");
    }
    let mut doomed = vec![id.to_owned()];
    let mut i = 0;
    while i < doomed.len() {
        let here = Some(doomed[i].clone());
        doomed.extend(
            s.folders
                .iter()
                .filter(|(_, f)| f.parent == here)
                .map(|(k, _)| k.clone()),
        );
        i += 1;
    }
    for folder in &doomed {
        s.folders.remove(folder);
        s.documents.retain(|_, d| d.folder.as_ref() != Some(folder));
    }
    Reply::bare(200, "Directory deleted successfully")
}

fn document_info(s: &Store, id: &str) -> Reply {
    let d = match revised(s, id) {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    let size = d.revision.as_ref().map_or(0, |r| r.data.len());
    Reply::new(
        200,
        "Document info retrieved successfully",
        json!({
            "document_id": id, "parent_id": d.folder, "title": d.title, "size": size,
            "created_time": d.created_time, "last_modified": d.last_modified,
            "access_rules": [], "info_code": 0,
        }),
    )
}
