//! One path's routes as an actix resource: HEAD is answered wherever GET is
//! (the same handler; actix sends the headers without the body), and any
//! other method gets 405 with an `Allow` header and the JSON error shape.

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, web};

use super::error::ApiError;

/// A path and the methods it answers.
pub struct Endpoint {
    resource: Resource,
    allow: Vec<String>,
}

impl Endpoint {
    pub fn new(path: &str) -> Self {
        Self {
            resource: web::resource(path),
            allow: Vec::new(),
        }
    }

    /// GET, and HEAD with the same handler.
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::GET, handler.clone())
            .on(Method::HEAD, handler)
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::POST, handler)
    }

    pub fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::PUT, handler)
    }

    pub fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::PATCH, handler)
    }

    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::DELETE, handler)
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.allow.push(method.as_str().to_owned());
        self.resource = self.resource.route(web::method(method).to(handler));
        self
    }

    /// The resource, answering 405 to methods it has no route for.
    pub fn build(self) -> Resource {
        let allow = self.allow.join(", ");
        self.resource
            .default_service(web::to(move |request: HttpRequest| {
                let allow = allow.clone();
                async move { method_not_allowed(&request, &allow) }
            }))
    }
}

fn method_not_allowed(request: &HttpRequest, allow: &str) -> HttpResponse {
    let error = ApiError::new(
        405,
        "method_not_allowed",
        format!(
            "{} does not answer {}; it answers {allow}",
            request.path(),
            request.method()
        ),
    );
    HttpResponse::MethodNotAllowed()
        .insert_header(("Allow", allow.to_owned()))
        .json(error.body())
}
