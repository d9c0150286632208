using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Identity.Server.Admin;

/// <summary>
/// Documents a route's JSON request body without <c>Accepts</c>: that metadata makes routing answer a wrong
/// content type with a bare 415 before the handler runs, where the admin API promises a 400 problem naming the
/// field (<see cref="AdminHttp.ReadAsync{T}"/> checks the content type itself).
/// </summary>
public sealed record JsonBody(Type Type)
{
    public static RouteHandlerBuilder Of<T>(RouteHandlerBuilder route) => route.WithMetadata(new JsonBody(typeof(T)));

    public static async Task DescribeAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (context.Description.ActionDescriptor.EndpointMetadata.OfType<JsonBody>().FirstOrDefault() is not { } body)
        {
            return;
        }

        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/json"] = new() { Schema = await context.GetOrCreateSchemaAsync(body.Type, null, cancellationToken) },
            },
        };
    }
}

public static class JsonBodyExtensions
{
    public static RouteHandlerBuilder AcceptsJson<T>(this RouteHandlerBuilder route) => JsonBody.Of<T>(route);
}
