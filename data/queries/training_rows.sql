-- Training rows: one listing impression with its user and its listing, labelled booked when a
-- confirmed booking followed it. The columns are the training set's (docs/data.md).
--
-- @param start_date DATE 2026-01-01  first event date included
-- @param end_date   DATE 2026-12-31  last event date included
--
-- BigQuery exports INT64 values as JSON strings, so counts are cast to FLOAT64 and the label
-- is a BOOL (loading reads true/false as 1/0).
WITH confirmed AS (
  SELECT DISTINCT impression_id
  FROM `travel.bookings`
  WHERE status = 'confirmed'
),
events AS (
  SELECT *, DATE(event_ts) AS event_date
  FROM `travel.impressions`
  WHERE DATE(event_ts) BETWEEN @start_date AND @end_date
)
SELECT
  e.impression_id,
  CAST(e.event_date AS STRING) AS event_date,
  u.country,
  u.language,
  e.device,
  LOWER(FORMAT_DATE('%a', e.event_date)) AS day_of_week,
  CASE
    WHEN EXTRACT(MONTH FROM e.event_date) IN (12, 1, 2) THEN 'winter'
    WHEN EXTRACT(MONTH FROM e.event_date) IN (3, 4, 5) THEN 'spring'
    WHEN EXTRACT(MONTH FROM e.event_date) IN (6, 7, 8) THEN 'summer'
    ELSE 'autumn'
  END AS season,
  e.item_id,
  e.price,
  l.rating,
  l.distance_km,
  CAST(e.nights AS FLOAT64) AS nights,
  CAST(e.lead_time_days AS FLOAT64) AS lead_time_days,
  l.title,
  c.impression_id IS NOT NULL AS booked
FROM events AS e
JOIN `travel.users` AS u ON u.user_id = e.user_id
JOIN `travel.listings` AS l ON l.item_id = e.item_id
LEFT JOIN confirmed AS c ON c.impression_id = e.impression_id
ORDER BY e.impression_id
