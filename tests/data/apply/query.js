export function parseQuery(query) {
	const params = {};
	if (!query) {
		return params;
	}
	const text = query.startsWith("?") ? query.slice(1) : query;
	for (const part of text.split("&")) {
		const [key, value] = part.split("=");
		if (key === "") {
			continue;
		}
		params[decodeURIComponent(key)] = decodeURIComponent(value || "");
	}
	return params;
}

export function buildQuery(params) {
	const parts = [];
	for (const key of Object.keys(params).sort()) {
		const value = params[key];
		if (value === undefined || value === null) {
			continue;
		}
		parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
	}
	return parts.length ? "?" + parts.join("&") : "";
}

export const mergeQuery = (base, extra) => {
	const merged = { ...parseQuery(base) };
	for (const [key, value] of Object.entries(extra)) {
		merged[key] = value;
	}
	return buildQuery(merged);
};
